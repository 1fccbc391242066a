/**
 * `conclave snapshot restore|status`: etcdctl's snapshot commands for Conclave's snapshot files
 * (what `etcdctl snapshot save` fetches from a Conclave member), with etcdctl's flags and output.
 */
import { Command, Option } from 'commander';
import { FLAG_NAMES, SERVER_DEFAULTS, resolveConfig } from '../server/config.ts';
import { restoreSnapshotFile, snapshotFileStatus, type SnapshotStatus } from '../server/restore.ts';
import { open, rename } from 'node:fs/promises';
import { clientAction, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { ProgressBar } from './progress.ts';
import { boxTable } from './table.ts';

/** Bytes in SI units as etcdctl prints them (go-humanize): "20 kB", "1.5 MB". */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  const value = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  if (value < 10) return `${value.toFixed(1)} ${units[e]}`;
  // Go's %.0f rounds half to even (20.5 → "20"), where toFixed rounds it up.
  const whole = Math.floor(value);
  const half = value - whole === 0.5;
  return `${half ? whole + (whole % 2) : Math.round(value)} ${units[e]}`;
}

/** etcdctl's snapshot status output in its three formats. */
export function formatStatus(s: SnapshotStatus, format: string): string {
  const hash = (s.hash >>> 0).toString(16);
  switch (format) {
    case 'json':
      return `${JSON.stringify({ hash: s.hash >>> 0, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize })}\n`;
    case 'table':
      return boxTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [[hash, String(s.revision), String(s.totalKey), humanBytes(s.totalSize)]]);
    case 'simple':
      return `${hash}, ${s.revision}, ${s.totalKey}, ${humanBytes(s.totalSize)}\n`;
    default:
      throw new Error(`unsupported output format "${format}" (simple, json or table)`);
  }
}

/** The flags restore shares with serve (same names and meanings), with etcdctl's help texts. */
const RESTORE_FLAGS: ReadonlyArray<readonly [flag: string, help: string]> = [
  [FLAG_NAMES.dataDir, 'path to the data directory (default "${name}.conclave")'],
  [FLAG_NAMES.walDir, 'path to the WAL directory to use (default "${data-dir}/member/wal")'],
  [FLAG_NAMES.name, `human-readable name for this member (default "${SERVER_DEFAULTS.name}")`],
  [FLAG_NAMES.initialCluster, 'initial cluster configuration for restore bootstrap: name=peerURL,… (default "${name}=${initial-advertise-peer-urls}")'],
  [FLAG_NAMES.initialClusterToken, `initial cluster token for the cluster during restore bootstrap (default "${SERVER_DEFAULTS.initialClusterToken}")`],
  [FLAG_NAMES.initialAdvertisePeerUrls, `this member's peer URLs to advertise to the rest of the cluster (default "${SERVER_DEFAULTS.initialAdvertisePeerUrls}")`],
];

function restoreCommand(): Command {
  const cmd = new Command('restore').description('restores a snapshot into the data directory of a member of a new cluster').argument('<filename>', 'snapshot file');
  const attribute = new Map<string, string>();
  for (const [flag, help] of RESTORE_FLAGS) {
    const option = new Option(`--${flag} <value>`, help);
    attribute.set(flag, option.attributeName());
    cmd.addOption(option);
  }
  cmd.addOption(new Option('--skip-hash-check', 'ignore the snapshot integrity hash value'));
  cmd.action(async (file: string, opts: Record<string, string | boolean | undefined>) => {
    const given: Record<string, string | undefined> = {};
    for (const [flag, attr] of attribute) {
      const v = opts[attr];
      if (typeof v === 'string') given[flag] = v;
    }
    const config = resolveConfig(given, {});
    const r = await restoreSnapshotFile(file, config, { skipHashCheck: opts.skipHashCheck === true, progress: new ProgressBar() });
    console.log(
      `restored ${file} into ${config.dataDir}: member ${r.identity.memberId} (${config.name}) of new cluster ${r.identity.clusterId} ` +
        `with ${r.identity.memberIds.size} member(s); revision ${r.revision}, ${r.records} records`,
    );
  });
  return cmd;
}

function statusCommand(): Command {
  return new Command('status')
    .description('prints the hash, revision, total keys and size of a snapshot file')
    .argument('<filename>', 'snapshot file')
    .addOption(new Option('-w, --write-out <format>', 'output format').choices(['simple', 'json', 'table']).default('simple'))
    .action(async (file: string, opts: { writeOut: string }) => {
      const status = await snapshotFileStatus(file, new ProgressBar());
      process.stdout.write(formatStatus(status, opts.writeOut));
    });
}

function saveCommand(): Command {
  const cmd = new Command('save').description("stores a member's snapshot to a file (the first of --endpoints)").argument('<filename>', 'file to write');
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions>(async (client, _o, [file]) => {
      // Written under a temporary name and renamed once complete, as etcdctl does.
      const partial = `${file as string}.part`;
      const progress = new ProgressBar();
      const out = await open(partial, 'w');
      try {
        let begun = false;
        for await (const chunk of client.snapshot()) {
          if (!begun) progress.begin('snapshot', chunk.blob.length + chunk.remainingBytes);
          begun = true;
          await out.write(chunk.blob);
          progress.advance(chunk.blob.length);
        }
        progress.end();
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(partial, file as string);
      console.log(`Snapshot saved at ${file as string}`);
    }),
  );
}

export function snapshotCommand(): Command {
  return new Command('snapshot')
    .description('saves, restores or inspects snapshot files')
    .addCommand(saveCommand())
    .addCommand(restoreCommand())
    .addCommand(statusCommand());
}
