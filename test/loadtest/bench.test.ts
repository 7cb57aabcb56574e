import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodescaleError } from '../../src/errors.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { runSweep } from '../../src/loadtest/sweep.ts';
import { closedPort, countingServer, countRequests, rawServer } from '../helpers/servers.ts';

const rejectsWith = (code: string) => (error: unknown) => error instanceof NodescaleError && error.code === code;

test('completed requests equal what the server counted: amount, duration, pipelining, worker threads', async (t) => {
  const server = await countingServer(t);
  const cases = [
    { amount: 5000, connections: 8 },
    { amount: 3001, connections: 7, pipelining: 5 },
    { amount: 4000, connections: 4, workers: 2 },
    { durationMs: 500, connections: 8, pipelining: 3 },
    { durationMs: 500, connections: 6, workers: 3 },
  ];
  for (const options of cases) {
    const before = server.count();
    const result = await runBench({ url: server.url, ...options });
    const counted = server.count() - before;
    assert.equal(result.requests.total, counted, JSON.stringify(options));
    assert.equal(result.requests.sent, counted, JSON.stringify(options));
    if ('amount' in options) assert.equal(result.requests.total, options.amount);
    assert.equal(result.errors.total, 0);
    assert.deepEqual(result.statusCodes, { '200': counted });
    assert.ok(result.generator.cpuMicrosPerRequest > 0);
  }
});

test('latency is reported in fractional milliseconds from a microsecond histogram', async (t) => {
  const server = await countingServer(t);
  const result = await runBench({ url: server.url, amount: 2000, connections: 4 });
  const l = result.latencyMs;
  assert.ok(
    l.min > 0 &&
      l.min <= l.p50 &&
      l.p50 <= l.p75 &&
      l.p75 <= l.p90 &&
      l.p90 <= l.p99 &&
      l.p99 <= l.p999 &&
      l.p999 <= l.p9999 &&
      l.p9999 <= l.max,
  );
  assert.ok(l.mean > 0 && l.stdev >= 0);
  // Figures carry microseconds: they are not rounded to whole milliseconds (at most one of seven may happen to be).
  const whole = [l.min, l.p50, l.p75, l.p90, l.p99, l.mean, l.max].filter((v) => v === Math.round(v));
  assert.ok(whole.length <= 1, `looks rounded to whole ms: ${JSON.stringify(l)}`);
});

test('status codes are counted by code, and non-2xx responses count as errors', async (t) => {
  const server = await countingServer(t, (_req, res, n) => {
    res.statusCode = n % 4 === 0 ? 503 : n % 4 === 1 ? 404 : 200;
    res.end('x');
  });
  const result = await runBench({ url: server.url, amount: 400, connections: 1 });
  assert.deepEqual(result.statusCodes, { '200': 200, '404': 100, '503': 100 });
  assert.equal(result.errors.non2xx, 200);
  assert.equal(result.errors.total, 200);
});

test('chunked responses, Connection: close with reconnects, HEAD and request bodies are framed correctly', async (t) => {
  const chunked = await countingServer(t, (_req, res) => {
    res.write('Hello ');
    res.end('World!');
  });
  const a = await runBench({ url: chunked.url, amount: 1000, connections: 4, pipelining: 2 });
  assert.equal(a.requests.total, 1000);
  assert.equal(a.errors.total, 0);

  const closing = await countingServer(t, (_req, res) => {
    res.setHeader('connection', 'close');
    res.end('bye');
  });
  const b = await runBench({ url: closing.url, amount: 300, connections: 3 });
  assert.equal(b.requests.total, 300);
  assert.equal(closing.count(), 300);
  assert.equal(b.errors.total, 0);

  const head = await countingServer(t, (req, res) => {
    assert.equal(req.method, 'HEAD');
    res.setHeader('content-length', 1000);
    res.end();
  });
  const c = await runBench({ url: head.url, amount: 500, connections: 2, pipelining: 4, method: 'HEAD' });
  assert.equal(c.requests.total, 500);

  const bodies: string[] = [];
  const echo = await countingServer(t, (req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      bodies.push(`${req.method} ${req.headers['content-type']} ${body}`);
      res.end();
    });
  });
  await runBench({
    url: echo.url,
    amount: 10,
    connections: 1,
    method: 'post',
    headers: { 'content-type': 'application/json' },
    body: '{"a":1}',
  });
  assert.deepEqual(new Set(bodies), new Set(['POST application/json {"a":1}']));
});

test('an unreachable target fails fast with NS_ERR_TARGET_UNREACHABLE', async () => {
  const port = await closedPort();
  await assert.rejects(
    runBench({ url: `http://127.0.0.1:${port}/`, connections: 4, durationMs: 30_000 }),
    rejectsWith('NS_ERR_TARGET_UNREACHABLE'),
  );
});

test('a target that answers garbage is counted as parse errors and reported as not HTTP', async (t) => {
  const server = await rawServer(t, (socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n'));
  await assert.rejects(
    runBench({ url: server.url, connections: 2, durationMs: 30_000 }),
    rejectsWith('NS_ERR_TARGET_NOT_HTTP'),
  );
});

test('a server that closes mid-response, or sometimes answers garbage, costs errors, not the run', async (t) => {
  let n = 0;
  const server = await rawServer(t, (socket, chunk) => {
    for (let i = countRequests(chunk.toString('latin1')); i > 0; i--) {
      n++;
      if (n % 10 === 0)
        socket.destroy(); // hang up with the response half sent
      else if (n % 10 === 5) socket.write('HTTP/1.1 abc\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      if (socket.destroyed) return;
    }
  });
  const result = await runBench({ url: server.url, amount: 400, connections: 4 });
  assert.ok(result.requests.total > 0);
  assert.ok(result.errors.parse > 0, 'parse errors counted');
  assert.ok(result.errors.reset > 0, 'resets counted');
  assert.equal(
    result.errors.total,
    result.errors.parse + result.errors.reset + result.errors.timeout + result.errors.connect + result.errors.non2xx,
  );
});

test('requests without a response within the timeout are counted as timeouts', async (t) => {
  let n = 0;
  const server = await rawServer(t, (socket, chunk) => {
    for (let i = countRequests(chunk.toString('latin1')); i > 0; i--) {
      // Every third request is never answered.
      if (++n % 3 !== 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    }
  });
  const result = await runBench({ url: server.url, connections: 2, durationMs: 600, timeoutMs: 100 });
  assert.ok(result.requests.total > 0);
  assert.ok(result.errors.timeout > 0);
});

test('a silent target is reported as NS_ERR_TARGET_TIMEOUT', async (t) => {
  const server = await rawServer(t, () => {});
  await assert.rejects(
    runBench({ url: server.url, connections: 2, durationMs: 400, timeoutMs: 100 }),
    rejectsWith('NS_ERR_TARGET_TIMEOUT'),
  );
});

test('open model: latency is measured from the intended send time, so a stall shows in the tail', async (t) => {
  // The server stalls every response for 300 ms once, at its 50th request.
  const STALL_MS = 300;
  let stalledUntil = 0;
  const server = await countingServer(t, (_req, res, n) => {
    if (n === 50) stalledUntil = Date.now() + STALL_MS;
    const wait = stalledUntil - Date.now();
    if (wait > 0) setTimeout(() => res.end('ok'), wait);
    else res.end('ok');
  });
  const open = await runBench({ url: server.url, amount: 400, rate: 500, connections: 4 });
  assert.equal(open.requests.total, 400);
  assert.equal(open.model, 'open');
  // About 150 requests were due during the stall, each waiting for what was left of it: a quarter of all requests
  // waited ≥ 100 ms. A closed-model generator would have stopped sending instead and hidden them.
  assert.ok(open.latencyMs.p75 >= 100, `open-model p75 ${open.latencyMs.p75} ms should show the stall`);
  assert.ok(open.notSentOnTime! > 0, 'requests due while every connection was stuck were not sent on time');

  stalledUntil = 0;
  const before = server.count();
  const closed = await runBench({ url: server.url, amount: 400, connections: 4 });
  assert.equal(server.count() - before, 400);
  assert.equal(closed.notSentOnTime, null);
});

test('a rate with an amount sends exactly that many requests', async (t) => {
  const server = await countingServer(t);
  const result = await runBench({ url: server.url, amount: 250, rate: 2000, connections: 8 });
  assert.equal(result.requests.total, 250);
  assert.equal(server.count(), 250);
});

test('invalid options are refused with NS_ERR_INVALID_OPTION or NS_ERR_INVALID_URL before any connection', async () => {
  const url = 'http://127.0.0.1:9/';
  await assert.rejects(runBench({ url, connections: 0 }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, connections: 2, workers: 3 }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, amount: 10, durationMs: 1000 }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, pipelining: 1.5 }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, rate: -1 }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, headers: { 'bad header': 'x' } }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url, headers: { x: 'a\r\nInjected: 1' } }), rejectsWith('NS_ERR_INVALID_OPTION'));
  await assert.rejects(runBench({ url: 'not a url' }), rejectsWith('NS_ERR_INVALID_URL'));
  await assert.rejects(runBench({ url: 'ftp://127.0.0.1/' }), rejectsWith('NS_ERR_INVALID_URL'));
  await assert.rejects(runBench({ url, insecure: true }), rejectsWith('NS_ERR_INVALID_OPTION'));
});

test('latencyMs2xx is the latency of served (2xx) requests only', async (t) => {
  // Every other request is a slow 200 (40 ms); the rest are instant 503s.
  const server = await countingServer(t, (_req, res, n) => {
    if (n % 2 === 0) return void setTimeout(() => res.end('ok'), 40);
    res.statusCode = 503;
    res.end();
  });
  const result = await runBench({ url: server.url, amount: 40, connections: 1 });
  assert.equal(result.statusCodes['200'], 20);
  // 35, not 40: libuv timers may fire a little early by our clock, and the histogram reports bucket values.
  assert.ok(result.latencyMs2xx.p50 >= 35, `2xx p50 ${result.latencyMs2xx.p50}`);
  assert.ok(result.latencyMs.p50 < result.latencyMs2xx.p50, 'all responses together are faster');
  assert.ok(result.latencyMs2xx.min >= 35, `2xx min ${result.latencyMs2xx.min}`);
});

test('--warmup: responses to requests sent during the warm-up are not counted, however late they come', async (t) => {
  // Each response takes 150 ms: at the end of a 200 ms warm-up, every connection has a request in flight.
  const server = await countingServer(t, (_req, res) => setTimeout(() => res.end('ok'), 150));
  const result = await runBench({ url: server.url, connections: 8, warmupMs: 200, durationMs: 600 });
  assert.ok(result.requests.total > 0, JSON.stringify(result.requests));
  assert.ok(
    result.requests.total <= result.requests.sent,
    `no more responses than requests sent while measuring: ${JSON.stringify(result.requests)}`,
  );
  // With an amount, the measured requests are that amount, the warm-up's stragglers aside.
  const amount = await runBench({ url: server.url, connections: 8, warmupMs: 200, amount: 40 });
  assert.deepEqual([amount.requests.sent, amount.requests.total], [40, 40]);
});

test('an option name that is a typo is refused with the nearest known one, by runBench and runSweep', async () => {
  await assert.rejects(runBench({ url: 'http://127.0.0.1:1/', conections: 4 } as never), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option conections; did you mean connections?',
  });
  await assert.rejects(runSweep({ url: 'http://127.0.0.1:1/', levels: [1], warmupMS: 0 } as never), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option warmupMS; did you mean warmupMs?',
  });
});
