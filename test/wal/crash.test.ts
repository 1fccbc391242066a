/**
 * Process crashes: a child appends with several saves in flight and reports each acknowledged
 * batch; it is SIGKILLed at a random moment, the log is recovered, and every acknowledged entry
 * must be there, intact and contiguous. Repeated on the same directory so recovery, then more
 * appends, then another crash are covered. (SIGKILL keeps the page cache, so this tests the
 * process crash path; torn writes of a power loss are covered in recovery.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Wal } from '../../src/wal/index.ts';
import { CRASH_OPTIONS, crashEntryBytes } from './crash-writer.ts';
import { dataFor, tmpDir } from './helpers.ts';

const fixture = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const ITERATIONS = 5;

interface Run {
  readonly acked: number;
  readonly ackedCommit: number;
  readonly ready: number;
}

function runAndKill(dir: string, mode: 'create' | 'open', term: number, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, mode, String(term)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let acked = 0;
    let ackedCommit = 0;
    let ready = -1;
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const [what, a, b] = out.slice(0, nl).split(' ');
        out = out.slice(nl + 1);
        if (what === 'ready') {
          ready = Number(a);
          timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else if (what === 'ack') {
          acked = Math.max(acked, Number(a));
          ackedCommit = Math.max(ackedCommit, Number(b));
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal} before it was killed: ${err}`));
      else resolve({ acked, ackedCommit, ready });
    });
  });
}

test('crash: every batch acknowledged before SIGKILL is recovered intact', { timeout: 60_000 }, async (t) => {
  const dir = tmpDir(t);
  let previousLast = 0;
  let totalAcked = 0;
  for (let i = 1; i <= ITERATIONS; i++) {
    const killAfter = 30 + Math.floor(Math.random() * 300);
    const run = await runAndKill(dir, i === 1 ? 'create' : 'open', i, killAfter);
    assert.equal(run.ready, i === 1 ? 0 : previousLast, 'the writer resumed from what the last recovery found');

    const r = await Wal.open(dir, CRASH_OPTIONS);
    const snapIndex = r.snapshot?.index ?? 0;
    const last = r.entries.length > 0 ? r.entries[r.entries.length - 1]!.index : snapIndex;
    assert.ok(last >= run.acked, `iteration ${i} (killed after ${killAfter} ms): acknowledged up to ${run.acked}, recovered only up to ${last}`);
    assert.ok(r.hardState.commit >= run.ackedCommit, `acknowledged commit ${run.ackedCommit}, recovered ${r.hardState.commit}`);
    assert.ok(r.hardState.commit <= last);
    let expectIndex = snapIndex + 1;
    let prevTerm = r.snapshot?.term ?? 0;
    for (const e of r.entries) {
      assert.equal(e.index, expectIndex++, 'entries are contiguous after the snapshot marker');
      assert.ok(e.term >= prevTerm && e.term <= i, 'terms never go back');
      prevTerm = e.term;
      assert.deepEqual(e.data, dataFor(e.index, e.term, crashEntryBytes(e.index)), `entry ${e.index} is intact`);
    }
    t.diagnostic(`iteration ${i}: killed after ${killAfter} ms; acked ${run.ready + 1}..${run.acked}, recovered ${snapIndex + 1}..${last}, segments ${r.wal.segmentNames().length}`);
    await r.wal.close();
    totalAcked += run.acked - run.ready;
    previousLast = last;
  }
  assert.ok(totalAcked > 0, 'the writer acknowledged something before being killed');
});
