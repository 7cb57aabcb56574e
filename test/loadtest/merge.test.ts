import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CHANNELS } from '../../src/diagnostics.ts';
import { NodescaleError } from '../../src/errors.ts';
import { RESULT_FORMAT, type BenchResult } from '../../src/loadtest/aggregate.ts';
import {
  createLatencyHistogram,
  encodeHistogram,
  recordMicros,
  summarize,
  type Histogram,
} from '../../src/loadtest/histogram.ts';
import { mergeResults } from '../../src/loadtest/merge.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { runCli } from '../helpers/cli.ts';
import { countingServer } from '../helpers/servers.ts';

const rejectsWith = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof NodescaleError && error.code === code && (pattern === undefined || pattern.test(error.message));

/** A seeded uniform generator: the same samples every run. */
function uniform(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A result around `histogram`, as `bench --json` writes one (through JSON, as a file carries it). */
function resultOf(histogram: Histogram, startedAt: number, durationMs: number): unknown {
  const total = histogram.totalCount;
  const result: Omit<BenchResult, 'latencyMs' | 'latencyMs2xx'> & Record<string, unknown> = {
    format: RESULT_FORMAT,
    url: 'http://127.0.0.1:3000/',
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(startedAt + durationMs).toISOString(),
    model: 'closed',
    connections: 64,
    pipelining: 1,
    rate: null,
    durationMs,
    requests: { total, sent: total, perSecond: total / (durationMs / 1000) },
    latencyMs: summarize(histogram),
    latencyMs2xx: summarize(histogram),
    statusCodes: { '200': total },
    histogram: encodeHistogram(histogram),
    histogram2xx: encodeHistogram(histogram),
    byName: null,
    requestSet: { requests: 1, rows: 1, order: 'single', seed: null },
    errors: { connect: 0, tls: 0, reset: 0, timeout: 0, parse: 0, non2xx: 0, total: 0 },
    bytes: { total: 0, perSecond: 0 },
    notSentOnTime: null,
    generator: { workers: 1, cpuMicros: 0, cpuMicrosPerRequest: 0 },
  };
  return JSON.parse(JSON.stringify(result));
}

test('merged percentiles are those of one histogram of every sample; the average of percentiles is not', (t) => {
  // Two generator machines, 100 000 samples each: one close to the target (0.2–1.2 ms), one far (1–9 ms).
  const random = uniform(7);
  const near = createLatencyHistogram(10_000_000);
  const far = createLatencyHistogram(10_000_000);
  const all = createLatencyHistogram(10_000_000);
  for (let i = 0; i < 100_000; i++) {
    const a = 200 + random() * 1000;
    const b = 1000 + random() * 8000;
    recordMicros(near, a);
    recordMicros(far, b);
    recordMicros(all, a);
    recordMicros(all, b);
  }
  const start = Date.parse('2026-12-02T10:00:00Z');
  const merged = mergeResults([resultOf(near, start, 10_000), resultOf(far, start + 500, 10_000)]);
  const truth = summarize(all);
  assert.equal(merged.requests.total, 200_000);
  for (const key of ['p50', 'p90', 'p99', 'p999'] as const) assert.equal(merged.latencyMs[key], truth[key]);
  // Adding histograms keeps each bucket, not the exact extremes: max and min to the histogram's 3 digits.
  for (const key of ['max', 'min'] as const)
    assert.ok(Math.abs(merged.latencyMs[key] - truth[key]) <= truth[key] * 1e-3, `${key} ${merged.latencyMs[key]}`);
  assert.equal(merged.requests.perSecond, 20_000);
  assert.deepEqual(merged.merged, { runs: 2, overlapMs: 9500, windowMs: 10_500 });
  const averaged = (summarize(near).p50 + summarize(far).p50) / 2;
  t.diagnostic(`merged p50 ${truth.p50} ms; average of the two p50s ${averaged.toFixed(2)} ms`);
  assert.ok(averaged > 2 * truth.p50, `the average of percentiles (${averaged}) is far from the truth (${truth.p50})`);
  // A merged result merges again, to the same figures.
  const twice = mergeResults([JSON.parse(JSON.stringify(merged)) as unknown]);
  assert.deepEqual(twice.latencyMs, merged.latencyMs);
});

test('two generators against one server: the merged total is what the server counted, p99 that of every sample', async (t) => {
  const server = await countingServer(t, (_req, res, n) => {
    // Some responses slow, so the two runs' histograms differ in their tails.
    if (n % 50 === 0) setTimeout(() => res.end('ok'), 5);
    else res.end('ok');
  });
  const every = createLatencyHistogram(10_000_000);
  const record = (micros: unknown) => recordMicros(every, micros as number);
  subscribe(CHANNELS.benchLatency, record);
  t.after(() => unsubscribe(CHANNELS.benchLatency, record));
  const [a, b] = await Promise.all([
    runBench({ url: server.url, amount: 3000, connections: 4, timeoutMs: 10_000 }),
    runBench({ url: server.url, amount: 2000, connections: 2, pipelining: 4, timeoutMs: 10_000 }),
  ]);
  const merged = mergeResults([JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b))]);
  assert.equal(merged.requests.total, server.count());
  assert.equal(merged.requests.total, 5000);
  assert.equal(every.totalCount, 5000);
  assert.equal(merged.latencyMs.p99, summarize(every).p99);
  assert.equal(merged.latencyMs.p50, summarize(every).p50);
  assert.deepEqual(merged.statusCodes, { '200': 5000 });
  assert.ok(merged.merged.overlapMs > 0);
});

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-merge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('merge refuses what is not a result of this format, without a histogram, or that lies about its histogram', async (t) => {
  const histogram = createLatencyHistogram(10_000_000);
  for (let i = 1; i <= 100; i++) recordMicros(histogram, i * 10);
  const good = resultOf(histogram, Date.now(), 1000) as Record<string, unknown>;
  // A forged header asking for a histogram of 2^60 µs: refused before anything is allocated.
  const forged = Buffer.from(String(good.histogram), 'base64');
  const huge = createLatencyHistogram(2 ** 45);
  huge.recordValue(5);
  const cases: [unknown, RegExp][] = [
    [
      { ...good, format: 'nodescale-bench/0' },
      /of format "nodescale-bench\/0"; this nodescale merges nodescale-bench\/1/,
    ],
    [{ ...good, format: undefined }, /is not a result of nodescale bench --json/],
    [{ ...good, histogram: undefined }, /has no histogram/],
    [{ ...good, histogram: 'not base64!' }, /histogram is not base64/],
    [{ ...good, histogram: forged.subarray(0, 12).toString('base64') }, /histogram is not an HdrHistogram/],
    [{ ...good, histogram: encodeHistogram(huge) }, /header out of range/],
    [
      { ...good, requests: { total: 5, sent: 5, perSecond: 5 } },
      /histogram holds 100 samples but it counts 5 requests/,
    ],
    [{ ...good, statusCodes: { abc: 1 } }, /no status code/],
    [[], /is not a JSON object/],
  ];
  for (const [value, pattern] of cases)
    assert.throws(
      () => mergeResults([good, value], ['a.json', 'b.json']),
      rejectsWith('NS_ERR_MERGE', pattern),
      String(pattern),
    );
  assert.throws(
    () => mergeResults([good, { ...good, url: 'http://127.0.0.1:4000/' }], ['a.json', 'b.json']),
    rejectsWith('NS_ERR_MERGE', /b\.json: was taken against http:\/\/127\.0\.0\.1:4000\//),
  );
  // Through the CLI: exit 2, one line naming the file.
  const dir = tempDir(t);
  const a = path.join(dir, 'a.json');
  const b = path.join(dir, 'b.json');
  writeFileSync(a, JSON.stringify(good));
  writeFileSync(b, '{"not": "a result"');
  const run = await runCli(['merge', a, b]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /^error NS_ERR_MERGE: .*b\.json is not JSON/);
  assert.equal(run.stderr.trim().split('\n').length, 1);
  writeFileSync(b, JSON.stringify(good));
  const ok = await runCli(['merge', a, b, '--json', '--assert', 'p99<1ms', '--assert', 'rps>1000000']);
  assert.equal(ok.code, 1);
  const printed = JSON.parse(ok.stdout) as { requests: { total: number }; thresholds: { passed: boolean }[] };
  assert.equal(printed.requests.total, 200);
  assert.deepEqual(
    printed.thresholds.map((outcome) => outcome.passed),
    [true, false],
  );
  assert.match(ok.stderr, /^error NS_ERR_THRESHOLD_FAILED: rps>1000000 failed: rps 200\n$/);
});
