import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBench } from '../../src/loadtest/run.ts';
import { startFixture } from '../helpers/child.ts';

const options = JSON.stringify({ sampleIntervalMs: 200, overload: { maxEventLoopDelayMs: 40, exitAfterSamples: 2 } });

test('a CPU-bound route under concurrent load: shedding starts, health and metrics answer, shedding stops after', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', { NS_TEST_OPTIONS: options });
  // Probe the health endpoints while the load runs.
  const probes: { path: string; status: number }[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      for (const path of ['healthz', 'readyz', 'metrics']) {
        const response = await fetch(server.url + path);
        probes.push({ path, status: response.status });
        await response.arrayBuffer();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const load = await runBench({ url: `${server.url}block?ms=25`, connections: 8, durationMs: 2500 });
  probing = false;
  await probe;

  assert.ok(load.statusCodes['503']! > 0, `some requests were shed: ${JSON.stringify(load.statusCodes)}`);
  assert.ok(load.statusCodes['200']! > 0, 'some were served');
  await server.waitFor((e) => e.event === 'overload');
  const during = probes.filter((p) => p.path !== 'readyz');
  assert.ok(during.length > 0);
  assert.ok(
    during.every((p) => p.status === 200),
    `liveness and metrics kept answering 200: ${JSON.stringify(during.filter((p) => p.status !== 200))}`,
  );
  assert.ok(
    probes.some((p) => p.path === 'readyz' && p.status === 503),
    'readiness went false while shedding',
  );

  // The load is over: shedding stops, readiness comes back, requests are served again. On a busy machine a sample may
  // still cross the 40 ms threshold now and then, so this polls (bounded) instead of racing one sample.
  await server.waitFor((e) => e.event === 'recover');
  const eventually = async (path: string) => {
    for (let i = 0; i < 100; i++) {
      const response = await fetch(server.url + path);
      await response.arrayBuffer();
      if (response.status === 200) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };
  assert.ok(await eventually('readyz'), 'ready again');
  assert.ok(await eventually('block?ms=1'), 'served again');

  // A shed response says why and when to come back.
  const metrics = await (await fetch(`${server.url}metrics`)).text();
  assert.match(metrics, /nodescale_http_shed_total\{reason="overload"\} [1-9]/);
  assert.match(metrics, /nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200"\} [1-9]/);
  assert.doesNotMatch(metrics, /route="\/metrics"|route="\/healthz"/, 'health and metrics are not counted');
});

test('a shed response carries Retry-After and a JSON error code', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ overload: { maxInFlight: 1 } }),
  });
  const slow = fetch(`${server.url}slow?ms=500`);
  await server.waitFor((e) => e.event === 'slow-started');
  const refused = await fetch(server.url);
  assert.equal(refused.status, 503);
  assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
  const body = (await refused.json()) as { error: { code: string; reason: string } };
  assert.equal(body.error.code, 'NS_ERR_OVERLOADED');
  assert.equal(body.error.reason, 'in-flight');
  assert.equal((await slow).status, 200);
});

/** The body of the first 200 from `url`, polling while the server still sheds. */
async function eventually200(url: string): Promise<string> {
  for (let i = 0; ; i++) {
    const response = await fetch(url);
    const body = await response.text();
    if (response.status === 200 || i === 100) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Probes a path every 50 ms while `during` runs; the statuses seen. */
async function probeWhile(url: string, during: Promise<unknown>): Promise<number[]> {
  const statuses: number[] = [];
  let running = true;
  void during.finally(() => (running = false));
  while (running) {
    const response = await fetch(url);
    await response.arrayBuffer();
    statuses.push(response.status);
    await new Promise((r) => setTimeout(r, 50));
  }
  return statuses;
}

test('defaults, a CPU-bound route at many times its capacity: a turn of the loop is bounded, so liveness is answered; readiness is false', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ postMortem: false }),
  });
  // 32 connections on a 25 ms route: 800 ms of work each turn of the loop if every connection were served.
  const load = runBench({ url: `${server.url}block?ms=25`, connections: 32, durationMs: 3000, timeoutMs: 30_000 });
  const [result, health, ready] = await Promise.all([
    load,
    probeWhile(`${server.url}healthz`, load),
    probeWhile(`${server.url}readyz`, load),
  ]);
  assert.ok(result.statusCodes['503']! > 0, `some requests were shed: ${JSON.stringify(result.statusCodes)}`);
  assert.ok(result.statusCodes['200']! > 0, 'some were served');
  // maxLagMs (200 ms by default) ends a turn's serving after ~200 ms: at most 200 / 25 + 1 requests of 25 ms. A probe
  // that arrives during a turn is answered in it (health is never shed).
  const most = Number(await eventually200(`${server.url}turns`));
  assert.ok(most >= 1 && most <= 9, `at most 9 requests of 25 ms served in one turn of the loop, saw ${most}`);
  // Once it sheds, the turn budget is shedLagMs (50 ms): at most 50 / 25 + 1 = 3 requests a turn. The turns before
  // the first shed may serve more; the later half of the run is deep in shedding (with turns of 200 ms there, a
  // liveness probe on a new connection waited ~0.4 s).
  const turns = JSON.parse(await eventually200(`${server.url}turns?list=1`)) as number[];
  assert.ok(turns.length > 10, `turns that served: ${turns.length}`);
  const later = turns.slice(Math.floor(turns.length / 2));
  assert.ok(
    later.every((n) => n <= 3),
    `turns of the later half serving more than 3: ${JSON.stringify(turns)}`,
  );
  assert.ok(health.length > 0 && health.every((s) => s === 200), `liveness answered 200 throughout: ${health}`);
  assert.ok(ready.includes(503), `readiness false while shedding: ${ready}`);
  const metrics = await (await fetch(`${server.url}metrics`)).text();
  assert.match(metrics, /nodescale_http_shed_total\{reason="event-loop-lag"\} [1-9]/);
});

test('readiness is false while requests are shed by the lag limit alone', async (t) => {
  const server = await startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ postMortem: false, overload: { maxEventLoopDelayMs: 0, maxLagMs: 50 } }),
  });
  const load = runBench({ url: `${server.url}block?ms=20`, connections: 16, durationMs: 2000, timeoutMs: 30_000 });
  const [result, ready] = await Promise.all([load, probeWhile(`${server.url}readyz`, load)]);
  assert.ok(result.statusCodes['503']! > 0, `some requests were shed: ${JSON.stringify(result.statusCodes)}`);
  assert.ok(ready.includes(503), `readiness went false: ${ready}`);
  // Once nothing is shed for a sampling interval, ready again.
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await fetch(`${server.url}readyz`)).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200, 'ready again after the load');
});
