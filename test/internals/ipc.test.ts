import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { eachLine } from '../../src/lines.ts';
import {
  isMetricsRequest,
  isSampleDetail,
  MAX_LATENCY_BUCKETS,
  isServersRequest,
  listenForAnnouncements,
  MAX_SERVERS_ANSWERED,
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
  // A servers answer: every server's fields typed, at most MAX_SERVERS_ANSWERED of them (a worker cannot grow us).
  const server = {
    address: '127.0.0.1:3000',
    tls: false,
    keepAliveTimeoutMs: 5000,
    keepAliveTimeoutBufferMs: 1000,
    headersTimeoutMs: 60_000,
    requestTimeoutMs: 300_000,
  };
  assert.equal(workerMessage({ nodescale: 'servers', id: 1, servers: [server] })?.nodescale, 'servers');
  assert.equal(workerMessage({ nodescale: 'servers', id: 1, servers: [{ ...server, keepAliveTimeoutMs: -1 }] }), null);
  assert.equal(
    workerMessage({ nodescale: 'servers', id: 1, servers: [{ ...server, address: 'x'.repeat(300) }] }),
    null,
  );
  const many = Array.from({ length: MAX_SERVERS_ANSWERED + 1 }, () => server);
  assert.equal(workerMessage({ nodescale: 'servers', id: 1, servers: many }), null);
  assert.ok(isServersRequest({ nodescale: 'servers', id: 2 }));
  assert.ok(!isServersRequest({ nodescale: 'servers', id: 2, servers: [] }), 'an answer is not a request');
});

test("a sample's detail is checked apart: a bad one is dropped, the sample kept; runtime events are bounded", () => {
  const detail = {
    intervalMs: 1000,
    utilization: 0.5,
    cpuPercent: 20,
    rssBytes: 1,
    heapUsedBytes: 1,
    heapTotalBytes: 1,
    gcPauseMs: 0,
    inFlight: 0,
    shedPerSecond: 0,
    latency: { bounds: [0.001, 0.01], counts: [1, 2, 3] },
  };
  assert.ok(isSampleDetail(detail));
  assert.ok(
    !isSampleDetail({ ...detail, latency: { bounds: [0.001], counts: [1, 2, 3] } }),
    'one count per bucket, +Inf',
  );
  assert.ok(!isSampleDetail({ ...detail, cpuPercent: -1 }));
  const bounds = Array.from({ length: MAX_LATENCY_BUCKETS + 1 }, (_, i) => i + 1);
  assert.ok(!isSampleDetail({ ...detail, latency: { bounds, counts: [...bounds, 0] } }), 'a worker cannot grow us');
  // The sample itself still counts: `nodescale status` keeps its loop delay and req/s.
  const sample = { nodescale: 'sample', eventLoopDelayP99Ms: 3, requestsPerSecond: 1, detail: { junk: true } };
  assert.equal(workerMessage(sample)?.nodescale, 'sample');
  assert.equal(workerMessage({ nodescale: 'runtime-event', kind: 'leak', detail: 'x' })?.nodescale, 'runtime-event');
  assert.equal(workerMessage({ nodescale: 'runtime-event', kind: 'melt', detail: 'x' }), null);
  assert.equal(workerMessage({ nodescale: 'runtime-event', kind: 'leak', detail: 'x'.repeat(2001) }), null);
});

test('a child announces where it listens on the socket its parent named, not in its log lines', async (t) => {
  let announced!: (announcement: ListeningAnnouncement) => void;
  const announcement = new Promise<ListeningAnnouncement>((resolve) => (announced = resolve));
  const listener = await listenForAnnouncements((a) => announced(a));
  t.after(() => listener.close());
  const bin = new URL('../../bin/nodescale.js', import.meta.url).pathname;
  // Through a shell, as npx would start it: no descriptor is passed on, the socket's path is.
  const child = spawn('sh', ['-c', `exec "${process.execPath}" "${bin}" hello http --port 0`], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...listener.env },
  });
  t.after(() => child.kill('SIGTERM'));
  const { service, pid, url } = await announcement;
  assert.equal(service, 'hello');
  assert.equal(pid, child.pid);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal((await fetch(url)).status, 200);
});

test('eachLine cuts a long line however it arrives, and drops the rest of it', async () => {
  const read = async (chunks: string[]) => {
    const stream = new PassThrough();
    const lines: string[] = [];
    eachLine(stream, (line) => lines.push(line), 4);
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
    await new Promise((resolve) => stream.on('end', resolve).resume());
    return lines;
  };
  // In one chunk with its newline (it used to be passed on whole), and across chunks without one.
  assert.deepEqual(await read(['abcdefgh\nok\n']), ['abcd…', 'ok']);
  assert.deepEqual(await read(['abc', 'defg', 'hij\n', 'ok\n']), ['abcd…', 'ok']);
  assert.deepEqual(await read(['ab\ncd', 'ef\n', 'tail']), ['ab', 'cdef', 'tail']);
});
