import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { startFixture } from '../helpers/child.ts';

/** A GET on a keep-alive agent, resolving with status, body and the Connection header. */
function get(
  url: string,
  agent: http.Agent,
): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
      })
      .on('error', reject);
  });
}

test('SIGTERM drains in-flight requests, closes keep-alive, runs cleanup hooks, exits 0', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ shutdown: { graceMs: 5000 } }),
    NS_TEST_HOOK: '100',
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  t.after(() => agent.destroy());
  // An idle keep-alive connection, and five requests in flight when the signal comes.
  assert.equal((await get(server.url, agent)).status, 200);
  const inFlight = Array.from({ length: 5 }, () => get(`${server.url}slow?ms=700`, agent));
  await server.waitForCount((e) => e.event === 'slow-started', 5);
  server.kill('SIGTERM');
  const shutdown = await server.waitFor((e) => e.event === 'shutdown');
  assert.equal(shutdown.readiness, 'shutting-down', 'not ready (/readyz 503) from the moment draining starts');

  const results = await Promise.all(inFlight);
  for (const result of results) {
    assert.equal(result.status, 200, 'no in-flight request is dropped');
    assert.equal(result.body, 'slow');
    assert.equal(result.connection, 'close', 'in-flight responses close their connection');
  }
  const { code } = await server.exited;
  assert.equal(code, 0);
  assert.ok(
    server.events.some((e) => e.event === 'hook-ran'),
    'the cleanup hook ran',
  );
  assert.ok(server.events.some((e) => e.msg === 'graceful shutdown complete'));
  await assert.rejects(fetch(server.url), 'no longer accepting');
});

test('the grace period running out forces exit 1 and names what was still open', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ shutdown: { graceMs: 300 } }),
  });
  const stuck = fetch(`${server.url}slow?ms=5000`).catch(() => null);
  await server.waitFor((e) => e.event === 'slow-started');
  server.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 1);
  const forced = server.events.find((e) => typeof e.msg === 'string' && e.msg.startsWith('forced shutdown'));
  assert.ok(forced, 'a forced-shutdown message');
  assert.match(String(forced.msg), /grace period of 300 ms ran out/);
  assert.match(JSON.stringify(forced.inFlight), /GET \/slow\?ms=5000/);
  await stuck;
});

test('a second signal forces the exit at once', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ shutdown: { graceMs: 30_000 } }),
  });
  const stuck = fetch(`${server.url}slow?ms=10000`).catch(() => null);
  await server.waitFor((e) => e.event === 'slow-started');
  server.kill('SIGTERM');
  await server.waitFor((e) => e.event === 'shutdown');
  server.kill('SIGINT');
  const { code } = await server.exited;
  assert.equal(code, 1);
  assert.ok(server.events.some((e) => e.msg === 'forced shutdown: second SIGINT'));
  await stuck;
});
