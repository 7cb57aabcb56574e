import assert from 'node:assert/strict';
import { waitUntil } from '../helpers/wait.ts';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createRuntime, expressRoutes, protect, type Runtime } from 'nodescale/runtime';
import { nodescaleFastify } from 'nodescale/runtime/fastify';
import { createCompute } from 'nodescale/compute';
import { CHANNELS } from '../../src/diagnostics.ts';

// In-process runtimes: no signal handlers, no crash handler, nothing process-wide.
const quiet = { shutdown: { signals: [], exit: false }, postMortem: false, logger: () => {} } as const;

async function listen(t: TestContext, server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined));
  t.after(() => server.closeAllConnections());
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const metricsOf = async (base: string) => (await fetch(`${base}/metrics`)).text();

test('protect(): endpoints answer before the app, are not counted, and the app sees everything else', async (t) => {
  let appSaw = 0;
  const server = http.createServer((_req, res) => {
    appSaw++;
    res.end('app');
  });
  const runtime = protect(server, quiet);
  t.after(() => runtime.close());
  // A listener added after protect() is still behind the runtime.
  server.on('request', () => {});
  const base = await listen(t, server);
  assert.equal(await (await fetch(`${base}/anything`)).text(), 'app');
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'ready' });
  assert.equal((await fetch(`${base}/metrics?x=1`)).status, 200);
  const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(appSaw, 1);
  const metrics = await metricsOf(base);
  assert.match(metrics, /^process_cpu_user_seconds_total /m, "prom-client's default metrics");
  assert.match(metrics, /^nodejs_heap_size_used_bytes /m);
  assert.match(metrics, /nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200"\} 1$/m);
});

test('readiness is false during start-up (readyWhen manual) and after shutdown starts; liveness stays true', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const runtime = protect(server, { ...quiet, readyWhen: 'manual' });
  t.after(() => runtime.close());
  const base = await listen(t, server);
  assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'not-ready', reason: 'starting' });
  runtime.setReady();
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.equal(runtime.readiness, 'ready');
});

test('oversized bodies get 413 before the app reads them; malformed requests never crash the process', async (t) => {
  let appSaw = 0;
  const server = http.createServer((req, res) => {
    appSaw++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const runtime = protect(server, { ...quiet, maxBodyBytes: 1000 });
  t.after(() => runtime.close());
  const base = await listen(t, server);
  const big = await fetch(`${base}/upload`, { method: 'POST', body: 'x'.repeat(5000) });
  assert.equal(big.status, 413);
  assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'NS_ERR_PAYLOAD_TOO_LARGE');
  assert.equal((await fetch(`${base}/upload`, { method: 'POST', body: 'x'.repeat(500) })).status, 200);
  assert.equal(appSaw, 1);
  // Garbage, a half request, and a bogus Content-Length: the server answers 400 or closes, and keeps serving.
  const { port } = new URL(base);
  for (const payload of [
    '\x16\x03\x01 not http\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    'GET /half HTTP/1.1\r\nHo',
  ]) {
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(payload));
      socket.on('data', () => {});
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
  }
  assert.equal((await fetch(`${base}/`)).status, 200);
});

test('instrumentation can be switched off and on at run time', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const runtime: Runtime = protect(server, { ...quiet, sampleIntervalMs: 50 });
  t.after(() => runtime.close());
  const base = await listen(t, server);
  await fetch(base);
  runtime.instrument(false);
  assert.equal(runtime.instrumented, false);
  const before = runtime.samples().length;
  await fetch(base);
  await fetch(base);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(runtime.samples().length, before, 'no sampling while off');
  assert.match(await metricsOf(base), /status="200"\} 1$/m, 'requests while off are not timed');
  runtime.instrument(true);
  await fetch(base);
  await waitUntil(() => runtime.samples().length > before, 'sampling again');
  assert.match(await metricsOf(base), /status="200"\} 2$/m);
  const sample = runtime.latest()!;
  assert.ok(sample.memory.heapUsed > 0 && sample.memory.heapLimit > sample.memory.heapUsed);
  assert.ok(sample.eventLoop.delayP99Ms >= 0 && sample.eventLoop.utilization >= 0 && sample.eventLoop.utilization <= 1);
});

test('express: routes label the HTTP metrics by pattern', async (t) => {
  const app = express();
  app.use(expressRoutes());
  app.get('/users/:id', (req, res) => {
    res.send(`user ${req.params.id}`);
  });
  const server = http.createServer(app);
  const runtime = protect(server, quiet);
  t.after(() => runtime.close());
  const base = await listen(t, server);
  for (const id of [1, 2, 3]) assert.equal(await (await fetch(`${base}/users/${id}`)).text(), `user ${id}`);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  const metrics = await metricsOf(base);
  assert.match(
    metrics,
    /nodescale_http_request_duration_seconds_count\{route="\/users\/:id",method="GET",status="200"\} 3/,
  );
  assert.match(metrics, /route="unmatched",method="GET",status="404"/);
});

test('fastify: the plugin protects, labels by route pattern, and graceful shutdown closes fastify', async () => {
  const app = Fastify();
  let closed = false;
  app.addHook('onClose', async () => {
    closed = true;
  });
  await app.register(nodescaleFastify, { ...quiet, overload: { maxInFlight: 1 } });
  app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    return 'slow';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
  assert.deepEqual(await (await fetch(`${base}/items/7`)).json(), { id: '7' });
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const slow = fetch(`${base}/slow`);
  await waitUntil(() => app.nodescale.inFlightCount === 1, 'the slow request is in flight');
  assert.equal((await fetch(`${base}/items/8`)).status, 503, 'the in-flight limit of 1 sheds');
  assert.match(await metricsOf(base), /route="\/items\/:id",method="GET",status="200"\} 1/);
  const outcome = app.nodescale.shutdown('test');
  assert.equal((await slow).status, 200, 'the in-flight request finishes');
  assert.equal(await outcome, 'clean');
  assert.equal(closed, true, "fastify's onClose hooks ran");
});

test('in-flight tracking: pipelined requests on one socket are timed in order; aborted ones are forgotten', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    setTimeout(() => res.end('ok'), req.url === '/a' ? 30 : 1);
  });
  const runtime = protect(server, quiet);
  t.after(() => runtime.close());
  const base = await listen(t, server);
  const { port } = new URL(base);
  // Three pipelined requests on one connection, a shed-free mix of slow and fast.
  const replies = await new Promise<string>((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1', () =>
      socket.write(
        'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    );
    let got = '';
    socket.on('data', (chunk) => {
      got += chunk;
      if (got.split('\r\n\r\nok').length - 1 === 3) {
        socket.destroy();
        resolve(got);
      }
    });
  });
  assert.equal(replies.split('HTTP/1.1 200').length - 1, 3);
  assert.match(
    await metricsOf(base),
    /nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200"\} 3/,
  );
  // A request whose client goes away is in flight until the connection closes, then forgotten.
  const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n'));
  await waitUntil(() => runtime.inFlightCount === 1, 'the hanging request is in flight');
  socket.destroy();
  await waitUntil(() => runtime.inFlightCount === 0, 'the aborted request is forgotten');
});

test('/metrics on the app port answers private clients only by default; a proxied request goes to the app; metricsAccess any opens it', async (t) => {
  const server = http.createServer((_req, res) => res.writeHead(404).end('app 404'));
  const runtime = protect(server, quiet);
  t.after(() => runtime.close());
  const base = await listen(t, server);
  assert.equal((await fetch(`${base}/metrics`)).status, 200, 'loopback: served');
  for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
    const proxied = await fetch(`${base}/metrics`, { headers: { [header]: '203.0.113.9' } });
    assert.deepEqual([proxied.status, await proxied.text()], [404, 'app 404'], header);
  }
  const open = http.createServer((_req, res) => res.writeHead(404).end('app 404'));
  const openRuntime = protect(open, { ...quiet, metricsAccess: 'any' });
  t.after(() => openRuntime.close());
  const openBase = await listen(t, open);
  assert.equal((await fetch(`${openBase}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 200);
  assert.throws(() => protect(http.createServer(), { ...quiet, metricsAccess: 'public' as 'any' }), /metricsAccess/);
});

test('misuse of a runtime is an error with a code: a second server, shutdown hooks with shutdown off', () => {
  const runtime = createRuntime({ ...quiet, shutdown: false });
  runtime.attach(http.createServer());
  assert.throws(() => runtime.attach(http.createServer()), { code: 'NS_ERR_RUNTIME_ATTACHED' });
  assert.throws(() => runtime.onShutdown(() => {}), { code: 'NS_ERR_SHUTDOWN_DISABLED' });
  assert.throws(() => runtime.shutdown(), { code: 'NS_ERR_SHUTDOWN_DISABLED' });
  runtime.close();
});

test('diagnostics channels: a compute call is published while subscribed; shutdown says why', async (t) => {
  const calls: unknown[] = [];
  const onCall = (message: unknown) => calls.push(message);
  subscribe(CHANNELS.computeCall, onCall);
  t.after(() => unsubscribe(CHANNELS.computeCall, onCall));
  const compute = await createCompute({
    transport: 'inline',
    tasks: new URL('../fixtures/compute-tasks.ts', import.meta.url),
  });
  t.after(() => compute.close());
  await compute.call('echo', 'x');
  await assert.rejects(compute.call('no-such-task', 'x'));
  assert.deepEqual(
    calls.map((c) => ({ ...(c as object), durationMs: typeof (c as { durationMs: unknown }).durationMs })),
    [
      { transport: 'inline', task: 'echo', durationMs: 'number', ok: true, code: null },
      { transport: 'inline', task: 'no-such-task', durationMs: 'number', ok: false, code: 'NS_ERR_COMPUTE_FAILED' },
    ],
  );
  unsubscribe(CHANNELS.computeCall, onCall);
  await compute.call('echo', 'unheard');
  assert.equal(calls.length, 2, 'nothing is published without a subscriber');

  const shutdowns: unknown[] = [];
  const onShutdown = (message: unknown) => shutdowns.push(message);
  subscribe(CHANNELS.shutdown, onShutdown);
  t.after(() => unsubscribe(CHANNELS.shutdown, onShutdown));
  const server = http.createServer();
  const runtime = protect(server, quiet);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await runtime.shutdown('a test');
  assert.deepEqual(shutdowns, [{ reason: 'a test' }]);
});
