/**
 * Boxed tables as etcdctl draws them (its tablewriter settings): a rule above and below the
 * header and after the last row, headers centred (the odd space on the right), cells
 * right-aligned, one space of padding on each side.
 */
export function boxTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)) + 2);
  const rule = `+${widths.map((w) => '-'.repeat(w)).join('+')}+`;
  const centre = (t: string, w: number): string => {
    const left = Math.floor((w - t.length) / 2);
    return ' '.repeat(left) + t + ' '.repeat(w - t.length - left);
  };
  const right = (t: string, w: number): string => `${t.padStart(w - 1)} `;
  const line = (texts: readonly string[], fmt: (t: string, w: number) => string): string => `|${widths.map((w, i) => fmt(texts[i] ?? '', w)).join('|')}|`;
  return [rule, line(header, centre), rule, ...rows.map((r) => line(r, right)), rule, ''].join('\n');
}
