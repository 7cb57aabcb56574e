import assert from 'node:assert/strict';
import { waitUntil } from '../helpers/wait.ts';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { Counter, Gauge, register, Registry } from 'prom-client';
import { NodescaleError } from '../../src/errors.ts';
import { Flights, type Tracked } from '../../src/runtime/flights.ts';
import { HttpHistogram } from '../../src/runtime/http-histogram.ts';
import { LeakDetector } from '../../src/runtime/leak-detector.ts';
import { resolveRuntimeOptions, RUNTIME_DEFAULTS } from '../../src/runtime/options.ts';
import { OverloadGuard } from '../../src/runtime/overload.ts';
import { RingBuffer } from '../../src/runtime/ring-buffer.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { emptyGc, type RuntimeSample } from '../../src/runtime/sampler.ts';

const invalid = (name: RegExp) => (e: unknown) =>
  e instanceof NodescaleError && e.code === 'NS_ERR_INVALID_OPTION' && name.test(e.message);

test('options: defaults filled in, bad values named', () => {
  const o = resolveRuntimeOptions();
  assert.equal(o.overload!.maxEventLoopDelayMs, RUNTIME_DEFAULTS.overload.maxEventLoopDelayMs);
  assert.equal(o.shutdown!.graceMs, 10_000);
  assert.deepEqual(o.shutdown!.signals, ['SIGTERM', 'SIGINT']);
  assert.equal(o.metricsPath, '/metrics');
  assert.equal(resolveRuntimeOptions({ overload: false, metricsPath: false }).overload, null);
  assert.throws(() => resolveRuntimeOptions({ sampleIntervalMs: 0 }), invalid(/^sampleIntervalMs must be/));
  assert.throws(
    () => resolveRuntimeOptions({ overload: { maxEventLoopUtilization: 2 } }),
    invalid(/^overload\.maxEventLoopUtilization must be a number from 0 to 1/),
  );
  assert.throws(
    () => resolveRuntimeOptions({ overload: { maxInFlight: 1.5 } }),
    invalid(/^overload\.maxInFlight must be an integer/),
  );
  assert.throws(() => resolveRuntimeOptions({ metricsPath: 'metrics' }), invalid(/^metricsPath must be a path/));
  assert.throws(() => resolveRuntimeOptions({ latencyBuckets: [1, 0.5] }), invalid(/^latencyBuckets/));
  assert.throws(
    () => resolveRuntimeOptions({ shutdown: { signals: ['TERM' as NodeJS.Signals] } }),
    invalid(/^shutdown\.signals/),
  );
  assert.throws(() => resolveRuntimeOptions({ readyWhen: 'later' as 'manual' }), invalid(/^readyWhen/));
  assert.throws(() => resolveRuntimeOptions({ route: 'x' as never }), invalid(/^route must be a function/));
});

function sample(delayP99Ms: number, extra: Partial<{ heapUsed: number; inFlight: number }> = {}): RuntimeSample {
  return {
    time: 0,
    intervalMs: 1000,
    eventLoop: { delayP50Ms: 0, delayP99Ms, delayMaxMs: delayP99Ms, utilization: 0.5 },
    cpu: { percent: 50 },
    memory: { rss: 1e8, heapUsed: extra.heapUsed ?? 1e7, heapTotal: 2e7, heapLimit: 1e9, external: 0, arrayBuffers: 0 },
    gc: emptyGc(),
    activeResources: 3,
    http: { requestsPerSecond: 0, shedPerSecond: 0, inFlight: extra.inFlight ?? 0 },
  };
}

const req = (url: string) => ({ url, method: 'GET', headers: {} }) as IncomingMessage;

test('overload: enters over the threshold, leaves only after calm samples below the recover ratio', () => {
  const guard = new OverloadGuard(
    resolveRuntimeOptions({ overload: { maxEventLoopDelayMs: 100, enterAfterSamples: 1, exitAfterSamples: 2 } })
      .overload!,
  );
  assert.equal(guard.observe(sample(50), 0), null);
  assert.equal(guard.shouldShed(req('/'), 0), null);
  assert.deepEqual(guard.observe(sample(150), 1000), { type: 'overload', reasons: ['event-loop-delay'] });
  assert.equal(guard.shouldShed(req('/'), 0), 'overload');
  // 90 ms is under the threshold but above 80% of it: no calm sample.
  assert.equal(guard.observe(sample(90), 2000), null);
  assert.equal(guard.observe(sample(10), 3000), null);
  assert.equal(guard.overloaded, true, 'one calm sample is not enough');
  assert.deepEqual(guard.observe(sample(10), 4000), { type: 'recover', durationMs: 3000 });
  assert.equal(guard.shouldShed(req('/'), 0), null);
});

test('overload, defaults: one slow second is not overload, two in a row are; one calm second ends it; maxLagMs follows maxEventLoopDelayMs', () => {
  const o = resolveRuntimeOptions({}).overload!;
  assert.deepEqual([o.maxEventLoopDelayMs, o.maxLagMs, o.enterAfterSamples, o.exitAfterSamples], [200, 200, 2, 1]);
  assert.equal(resolveRuntimeOptions({ overload: { maxEventLoopDelayMs: 300 } }).overload!.maxLagMs, 300);
  assert.equal(resolveRuntimeOptions({ overload: { maxEventLoopDelayMs: 300, maxLagMs: 0 } }).overload!.maxLagMs, 0);
  const guard = new OverloadGuard(o);
  // A neighbour starting up: one sample at 5× the threshold, then calm. No shedding state at all.
  assert.equal(guard.observe(sample(1000), 0), null);
  assert.equal(guard.shouldShed(req('/'), 0), null);
  assert.equal(guard.observe(sample(20), 1000), null);
  assert.equal(guard.overloaded, false);
  // Real overload: two slow samples in a row.
  assert.equal(guard.observe(sample(400), 2000), null);
  assert.deepEqual(guard.observe(sample(400), 3000), { type: 'overload', reasons: ['event-loop-delay'] });
  assert.equal(guard.shouldShed(req('/'), 0), 'overload');
  assert.deepEqual(guard.observe(sample(20), 4000), { type: 'recover', durationMs: 1000 });
});

test('overload: Retry-After comes from how long the last overload took to clear', () => {
  const guard = new OverloadGuard(
    resolveRuntimeOptions({ overload: { maxEventLoopDelayMs: 100, enterAfterSamples: 1 } }).overload!,
  );
  guard.observe(sample(500), 0);
  assert.equal(guard.retryAfterSeconds(2500), 3, 'first overload: its length so far');
  guard.observe(sample(0), 7200);
  guard.observe(sample(500), 10_000);
  assert.equal(guard.retryAfterSeconds(10_001), 8, 'the last one took 7.2 s');
});

test('overload: priorities, exemptions and the in-flight limit', () => {
  const o = resolveRuntimeOptions({
    overload: {
      maxEventLoopDelayMs: 100,
      enterAfterSamples: 1,
      maxInFlight: 10,
      exempt: ['/internal'],
      priority: (r) => (r.url === '/batch' ? 'low' : r.url === '/checkout' ? 'high' : 'normal'),
    },
  }).overload!;
  const guard = new OverloadGuard(o);
  guard.observe(sample(85), 0); // 0.85 of the threshold: busy, not overloaded
  assert.equal(guard.shouldShed(req('/batch'), 0), 'overload', 'low priority goes first');
  assert.equal(guard.shouldShed(req('/'), 0), null);
  guard.observe(sample(150), 1000);
  assert.equal(guard.shouldShed(req('/'), 0), 'overload');
  assert.equal(guard.shouldShed(req('/checkout'), 0), null, 'high priority is kept below twice the threshold');
  assert.equal(guard.shouldShed(req('/internal?x=1'), 0), null, 'exempt');
  guard.observe(sample(250), 2000);
  assert.equal(guard.shouldShed(req('/checkout'), 0), 'overload');
  const calm = new OverloadGuard(o);
  assert.equal(calm.shouldShed(req('/'), 9), null);
  assert.equal(calm.shouldShed(req('/'), 10), 'in-flight');
});

test('HTTP histogram: cumulative buckets in prom-client exposition', async () => {
  const h = new HttpHistogram('t_seconds', [0.01, 0.1, 1]);
  h.observe('/a', 'GET', 200, 0.005);
  h.observe('/a', 'GET', 200, 0.05);
  h.observe('/a', 'GET', 200, 5);
  h.observe('/b/:id', 'POST', 503, 0.2);
  // Back to a series seen before, and one differing from the last in the status only.
  h.observe('/a', 'GET', 200, 0.005);
  h.observe('/a', 'GET', 404, 0.005);
  const registry = new Registry();
  registry.registerMetric(h as never);
  const text = await registry.metrics();
  assert.match(text, /# TYPE t_seconds histogram/);
  assert.match(text, /t_seconds_bucket\{route="\/a",method="GET",status="200",le="0.01"\} 2\n/);
  assert.match(text, /t_seconds_bucket\{route="\/a",method="GET",status="200",le="0.1"\} 3\n/);
  assert.match(text, /t_seconds_bucket\{route="\/a",method="GET",status="200",le="1"\} 3\n/);
  assert.match(text, /t_seconds_bucket\{route="\/a",method="GET",status="200",le="\+Inf"\} 4\n/);
  assert.match(text, /t_seconds_count\{route="\/a",method="GET",status="200"\} 4/);
  assert.match(text, /t_seconds_count\{route="\/a",method="GET",status="404"\} 1/);
  assert.match(text, /t_seconds_sum\{route="\/b\/:id",method="POST",status="503"\} 0.2/);
});

test('leak detector: a steady climb of the post-GC baseline fires, a flat or noisy one does not', () => {
  const criteria = { windowMs: 600_000, minSamples: 6, minGrowthBytesPerMinute: 1e6, horizonMs: 3_600_000 };
  const limit = 2e9;
  const climbing = new LeakDetector(criteria, limit);
  let fired = null;
  for (let i = 0; i < 10; i++) fired = climbing.observe(1e8 + i * 2e7, i * 30_000) ?? fired; // +40 MB/min
  assert.ok(fired, 'a leak is reported');
  assert.ok(Math.abs(fired.growthBytesPerMinute - 4e7) < 1e3);
  assert.ok(fired.msToLimit < 3_600_000);
  assert.equal(climbing.suspected, true);

  const flat = new LeakDetector(criteria, limit);
  for (let i = 0; i < 20; i++) assert.equal(flat.observe(1e8 + (i % 3) * 1e6, i * 30_000), null);
  const sawtooth = new LeakDetector(criteria, limit);
  // Big swings with no trend: R² stays low.
  for (let i = 0; i < 20; i++) assert.equal(sawtooth.observe(1e8 + (i % 2) * 5e7, i * 30_000), null);
  const slow = new LeakDetector(criteria, limit);
  // Steady but slow (0.1 MB/min): not worth an alarm.
  for (let i = 0; i < 20; i++) assert.equal(slow.observe(1e8 + i * 5e4, i * 30_000), null);
  assert.equal(flat.suspected || sawtooth.suspected || slow.suspected, false);
});

test('ring buffer keeps the newest, oldest first', () => {
  const ring = new RingBuffer<number>(3);
  assert.equal(ring.latest(), undefined);
  for (let i = 1; i <= 5; i++) ring.push(i);
  assert.deepEqual(ring.toArray(), [3, 4, 5]);
  assert.deepEqual(ring.toArray(2), [4, 5]);
  assert.equal(ring.latest(), 5);
});

test('overload: the lag limit sheds requests that find the loop busy past it', async () => {
  const guard = new OverloadGuard(resolveRuntimeOptions({ overload: { maxLagMs: 100 } }).overload!);
  guard.start();
  try {
    await waitUntil(() => guard.shouldShed(req('/'), 0) === null, 'an idle loop is not shed');
    const end = performance.now() + 250;
    while (performance.now() < end); // the loop is busy: timers cannot run
    assert.equal(guard.shouldShed(req('/'), 0), 'event-loop-lag');
    await waitUntil(() => guard.shouldShed(req('/'), 0) === null, 'calm again once timers ran');
  } finally {
    guard.stop();
  }
});

test('flights: the oldest response on a connection finishes first; a response is finished only where it began, and two trackers of one connection keep apart', () => {
  const socket = { destroyed: false };
  const response = (name: string) => ({ name, req: { socket } }) as unknown as Tracked;
  const [a, b, c] = [response('a'), response('b'), response('c')];
  const mine = new Flights();
  const theirs = new Flights();
  assert.equal(mine.begin(socket, a, 1), true, 'a new connection');
  assert.equal(mine.begin(socket, b, 2), false);
  mine.begin(socket, c, 3);
  assert.equal(mine.count, 3);
  assert.equal(theirs.finish(socket, a), -1, 'not tracked by the other one');
  assert.equal(theirs.begin(socket, response('x'), 9), true, 'a connection of its own');
  assert.equal(theirs.count, 1);
  assert.equal(mine.finish(socket, b), -1, 'only the oldest can finish');
  assert.equal(mine.finish(socket, a), 1);
  assert.deepEqual(
    [...mine.entries()].map(([res, start]) => [(res as unknown as { name: string }).name, start]),
    [
      ['b', 2],
      ['c', 3],
    ],
  );
  assert.equal(mine.finish(socket, b), 2);
  mine.sweep();
  assert.equal(mine.count, 1, 'an open connection is kept');
  socket.destroyed = true;
  mine.sweep();
  assert.equal(mine.count, 0, 'what was in flight on a closed connection is forgotten');
  assert.deepEqual([...mine.entries()], []);
});

test('options: a name the runtime does not know is refused, with the nearest known name', () => {
  const refused = (options: object, message: RegExp) =>
    assert.throws(
      () => resolveRuntimeOptions(options as never),
      (e: unknown) => (e as { code?: string }).code === 'NS_ERR_INVALID_OPTION' && message.test((e as Error).message),
    );
  refused(
    { overload: { maxEventLoopDelay: 100 } },
    /^unknown option overload\.maxEventLoopDelay; did you mean overload\.maxEventLoopDelayMs\?$/,
  );
  refused({ metricPath: '/m' }, /^unknown option metricPath; did you mean metricsPath\?$/);
  refused({ shutdown: { grace: 5000 } }, /did you mean shutdown\.graceMs\?/);
  refused(
    { overload: { colour: 'red' } },
    /^unknown option overload\.colour; the options are overload\.maxEventLoopDelayMs, /,
  );
  assert.doesNotThrow(() => resolveRuntimeOptions({ overload: { maxEventLoopDelayMs: 100 }, shutdown: false }));
});

test("/metrics serves what the app registered on prom-client's default registry, once", async () => {
  const counter = new Counter({ name: 'app_orders_total', help: 'Orders taken.' });
  // What an app that also calls collectDefaultMetrics() has: a name the runtime serves too.
  new Gauge({ name: 'nodescale_ready', help: "Not the runtime's." });
  try {
    counter.inc(3);
    const runtime = new Runtime({ logger: () => {}, postMortem: false, shutdown: false });
    const text = await runtime.metrics.served.text();
    assert.match(text, /^app_orders_total 3$/m);
    assert.equal(text.match(/^# TYPE nodescale_ready gauge$/gm)?.length, 1);
    const json = await runtime.metrics.served.json();
    assert.ok(json.some((m) => m.name === 'app_orders_total'));
    const own = new Registry();
    const alone = new Runtime({ logger: () => {}, postMortem: false, shutdown: false, registries: [own] });
    assert.doesNotMatch(await alone.metrics.served.text(), /app_orders_total/);
    assert.throws(
      () => new Runtime({ registries: [{}] as never }),
      (e: unknown) => (e as { code?: string }).code === 'NS_ERR_INVALID_OPTION',
    );
    runtime.close();
    alone.close();
  } finally {
    register.removeSingleMetric('app_orders_total');
    register.removeSingleMetric('nodescale_ready');
  }
});
