/**
 * The dashboard's arithmetic, with a fake supervisor: percentiles from merged histograms (never a mean of the
 * workers' percentiles), the worst worker's event-loop delay (never the mean), per-second deltas of each worker's
 * counts, a restarted worker starting afresh, and the last 15 minutes kept.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Collector, COLLECTOR_LIMITS, type AppPoint } from '../../src/dashboard/collector.ts';
import { quantileMs, subtractCounts } from '../../src/dashboard/histogram.ts';
import type { SampleDetail, SupervisorEvent, WorkerSampleEvent } from '../../src/ipc.ts';
import type { WorkerStatus } from '../../src/supervisor/status.ts';

const BOUNDS = [0.001, 0.01, 0.1, 1];

class FakeSupervisor extends EventEmitter {
  workers: WorkerStatus[] = [];
  status() {
    return this.workers;
  }
}

const worker = (slot: number, pid: number): WorkerStatus => ({
  slot,
  pid,
  generation: 1,
  state: 'ready',
  uptimeSeconds: 1,
  restarts: 0,
  rssBytes: 1000,
  eventLoopDelayP99Ms: null,
  requestsPerSecond: null,
});

const detail = (counts: number[]): SampleDetail => ({
  intervalMs: 1000,
  utilization: 0.5,
  cpuPercent: 10,
  rssBytes: 1 << 20,
  heapUsedBytes: 1 << 19,
  heapTotalBytes: 1 << 20,
  gcPauseMs: 1,
  inFlight: 0,
  shedPerSecond: 0,
  latency: { bounds: BOUNDS, counts },
});

const sample = (slot: number, pid: number, loopMs: number, counts: number[]): WorkerSampleEvent => ({
  slot,
  pid,
  generation: 1,
  time: Date.now(),
  eventLoopDelayP99Ms: loopMs,
  requestsPerSecond: counts.reduce((a, b) => a + b, 0),
  detail: detail(counts),
});

test('quantiles interpolate inside the bucket the rank falls in; +Inf reports the last bound; none is null', () => {
  // 100 requests: 50 under 1 ms, 50 between 1 and 10 ms.
  assert.equal(quantileMs(0.5, BOUNDS, [50, 50, 0, 0, 0]), 1);
  assert.ok(Math.abs(quantileMs(0.75, BOUNDS, [50, 50, 0, 0, 0])! - 5.5) < 1e-9);
  assert.equal(quantileMs(0.99, BOUNDS, [0, 0, 0, 0, 10]), 1000);
  assert.equal(quantileMs(0.5, BOUNDS, [0, 0, 0, 0, 0]), null);
  assert.deepEqual(subtractCounts([5, 5], [2, 1]), [3, 4]);
  assert.deepEqual(subtractCounts([1, 0], [2, 1]), [1, 0], 'a reset histogram counts afresh');
});

test('one point a second: latency from the merged histograms, the worst worker’s loop, each worker’s own second', () => {
  const source = new FakeSupervisor();
  source.workers = [worker(0, 100), worker(1, 101)];
  const collector = new Collector('api', source, 60_000);
  const points: AppPoint[] = [];
  collector.on('point', (point: AppPoint) => points.push(point));
  // Worker 0: 99 fast requests; worker 1: one slow one, its loop blocked.
  source.emit('sample', sample(0, 100, 5, [99, 0, 0, 0, 0]));
  source.emit('sample', sample(1, 101, 900, [0, 0, 0, 1, 0]));
  collector.tick();
  const [first] = points;
  assert.ok(first);
  assert.equal(first.requestsPerSecond, 100);
  assert.equal(first.eventLoopDelayP99Ms, 900, 'the worst worker, not the mean (452.5)');
  // Merged: 100 requests, the 99th under 1 ms → p99 1 ms; the 100th in (0.1, 1] s. A mean of the workers' p99s would
  // say about 500 ms.
  assert.ok(first.p99Ms! <= 1, `merged p99 ${first.p99Ms}`);
  assert.equal(first.workers[1]!.p99Ms! > 100, true, 'worker 1 alone is slow');

  // The next second counts only what is new; a worker with no sample since has no latency of its own.
  source.emit('sample', sample(0, 100, 5, [99, 10, 0, 0, 0]));
  collector.tick();
  const second = points[1]!;
  assert.ok(second.p50Ms! > 1 && second.p50Ms! <= 10, `only the 10 new requests: p50 ${second.p50Ms}`);
  assert.equal(second.workers[1]!.p99Ms, null);

  // Worker 0 restarted: a new pid, counted from its start.
  source.workers = [worker(0, 200), worker(1, 101)];
  source.emit('sample', sample(0, 200, 5, [3, 0, 0, 0, 0]));
  collector.tick();
  assert.equal(points[2]!.workers[0]!.pid, 200);
  assert.equal(points[2]!.p99Ms, quantileMs(0.99, BOUNDS, [3, 0, 0, 0, 0]));

  const event: SupervisorEvent = { time: Date.now(), kind: 'scale', workers: 3 };
  source.emit('event', event);
  for (let i = 0; i < COLLECTOR_LIMITS.points + 5; i++) collector.tick();
  const snapshot = collector.snapshot();
  assert.equal(snapshot.points.length, COLLECTOR_LIMITS.points, '15 minutes kept, no more');
  assert.deepEqual(snapshot.events, [event]);
  assert.equal(snapshot.workers.length, 2);
  collector.close();
  assert.equal(source.listenerCount('sample') + source.listenerCount('event'), 0);
});
