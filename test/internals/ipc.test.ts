import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  ANNOUNCE_FD_ENV,
  isMetricsRequest,
  readAnnouncements,
  workerMessage,
  type ListeningAnnouncement,
} from '../../src/ipc.ts';

test("a worker message is recognised only when every field has its type; the app's own messages are left alone", () => {
  assert.deepEqual(workerMessage({ nodescale: 'ready', pid: 12 }), { nodescale: 'ready', pid: 12 });
  assert.equal(
    workerMessage({ nodescale: 'sample', eventLoopDelayP99Ms: '3', requestsPerSecond: 1 })?.nodescale,
    undefined,
  );
  assert.equal(workerMessage({ nodescale: 'metrics', id: 1 }), null, 'a request is not an answer');
  assert.equal(workerMessage({ nodescale: 'metrics', id: 1, error: 'x' })?.nodescale, 'metrics');
  assert.equal(workerMessage({ nodescale: 'listening', service: 'tagger', url: 'http://x', pid: 1, slot: 'a' }), null);
  for (const other of ['ready', null, [], { type: 'mine' }, { nodescale: 'nothing' }])
    assert.equal(workerMessage(other), null);
  assert.ok(isMetricsRequest({ nodescale: 'metrics', id: 3 }));
  assert.ok(!isMetricsRequest({ nodescale: 'metrics', id: 3, metrics: [] }), 'an answer is not a request');
});

test('a child announces where it listens on the descriptor its parent gave, not in its log lines', async (t) => {
  const child = spawn(
    process.execPath,
    [new URL('../../bin/nodescale.js', import.meta.url).pathname, 'hello', 'http', '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      env: { ...process.env, [ANNOUNCE_FD_ENV]: '3' },
    },
  );
  const announced = await new Promise<ListeningAnnouncement>((resolve) =>
    readAnnouncements(child.stdio[3] as Readable, resolve),
  );
  t.after(() => child.kill('SIGTERM'));
  assert.equal(announced.service, 'hello');
  assert.equal(announced.pid, child.pid);
  assert.match(announced.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal((await fetch(announced.url)).status, 200);
});
