import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stackJoiner } from '../../src/cli/supervise.ts';

test('--log-format json: a stack trace is one record; lines of other workers and streams stay apart', async () => {
  const records: { record: Record<string, unknown>; stream: string }[] = [];
  let flushed!: () => void;
  const done = new Promise<void>((resolve) => (flushed = resolve));
  const join = stackJoiner((record, stream) => {
    records.push({ record, stream });
    if (records.length === 4) flushed();
  }, 20);
  const w0 = { slot: 0, pid: 10, stream: 'stderr' as const };
  join('Error: boom', w0);
  join('    at handler (/app/server.js:12:9)', w0);
  join('{"level":"info","msg":"from worker 1"}', { slot: 1, pid: 11, stream: 'stderr' });
  join('    at Server.emit (node:events:519:28)', w0);
  join('listening', { ...w0, stream: 'stdout' });
  join('next line', w0);
  await done;
  // Written when each ends (the next record of its worker and stream, or the wait): compared in any order.
  const messages = records
    .map((r) => JSON.stringify([r.record.pid, r.stream, r.record.message ?? r.record.msg]))
    .sort();
  const expected = [
    [11, 'stderr', 'from worker 1'],
    [10, 'stderr', 'Error: boom\n    at handler (/app/server.js:12:9)\n    at Server.emit (node:events:519:28)'],
    [10, 'stdout', 'listening'],
    [10, 'stderr', 'next line'],
  ].map((m) => JSON.stringify(m));
  assert.deepEqual(messages, expected.sort());
});
