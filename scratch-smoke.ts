import { startCluster, etcdctl, CONCLAVE_BIN } from '/work/wt-maint/test/helpers/processes.ts';
import { execFileSync } from 'node:child_process';
const c = await startCluster('conclave', 3);
const show = async (label: string, eps: string, args: string[], input?: string) => {
  const r = await etcdctl(eps, args, input);
  console.log(`### ${label}: etcdctl ${args.join(' ')}\ncode=${r.code}\n--stdout--\n${r.stdout}--stderr--\n${r.stderr.split('\n').filter(l=>!l.startsWith('{')).join('\n')}`);
  return r;
};
try {
  const m0 = c.members[0]!.clientUrl;
  for (let i = 0; i < 20; i++) await show('put', m0, ['put', `k${i}`, `v${i}`]);
  await show('status', c.endpoints, ['endpoint', 'status', '-w', 'table']);
  await show('defrag', c.endpoints, ['defrag']);
  await show('snap', m0, ['snapshot', 'save', '/tmp/maint-scratch/c.snap']);
  console.log(execFileSync(process.execPath, [CONCLAVE_BIN, 'snapshot', 'status', '/tmp/maint-scratch/c.snap', '-w', 'table']).toString());
  await show('move-leader bad', c.endpoints, ['move-leader', '1234']);
  const st = await etcdctl(c.endpoints, ['endpoint', 'status', '-w', 'json']);
  const j = JSON.parse(st.stdout.replace(/:(\d{15,})/g, ':"$1"')) as Array<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>;
  const follower = j.find((s) => s.Status.header.member_id !== s.Status.leader)!;
  await show('move-leader', c.endpoints, ['move-leader', BigInt(follower.Status.header.member_id).toString(16)]);
  await show('status', c.endpoints, ['endpoint', 'status']);
  const snap = await fetch(m0 + '/v3/maintenance/snapshot', { method: 'POST', body: '{}' });
  const text = await snap.text();
  console.log(snap.status, JSON.stringify([...snap.headers]), text.length, JSON.stringify(text.slice(0, 100)), JSON.stringify(text.slice(-120)));
  const df = await fetch(m0 + '/v3/maintenance/defragment', { method: 'POST', body: '{}' });
  console.log(df.status, await df.text());
} finally {
  await c.destroy();
}
