import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { geometricLevels, runSweep } from '../../src/loadtest/sweep.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp.ts';
import { countingServer } from '../helpers/servers.ts';

test('geometric levels are whole, unique, and end at --to', () => {
  assert.deepEqual(geometricLevels(1, 1024, 2), [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
  assert.deepEqual(geometricLevels(1, 10, 1.5), [1, 2, 3, 5, 8, 10]);
  assert.throws(() => geometricLevels(1, 10, 1), /factor/);
  assert.throws(() => geometricLevels(10, 1, 2), /to/);
});

test('a concurrency sweep measures every level and finds the knee', async (t) => {
  const server = await countingServer(t);
  const seen: number[] = [];
  const result = await runSweep(
    { url: server.url, levels: [1, 2, 4, 8], durationMs: 250, warmupMs: 50 },
    { onLevelDone: (_i, level) => seen.push(level.level) },
  );
  assert.deepEqual(seen, [1, 2, 4, 8]);
  assert.deepEqual(
    result.levels.map((l) => l.level),
    [1, 2, 4, 8],
  );
  assert.deepEqual(
    result.levels.map((l) => l.concurrency),
    [1, 2, 4, 8],
  );
  for (const level of result.levels) {
    assert.ok(level.throughput > 0);
    assert.ok(level.latencyMs.p99 >= level.latencyMs.p50);
    assert.equal(level.errors.total, 0);
    assert.ok(level.cpuMicrosPerRequest > 0);
  }
  assert.notEqual(result.knee.power, null);
  assert.notEqual(result.knee.usl, null);
  assert.equal(result.stoppedEarly, null);
});

test('a sweep stops early when p99 or errors pass their limits', async (t) => {
  const server = await countingServer(t);
  const byP99 = await runSweep({ url: server.url, levels: [1, 2, 4], durationMs: 150, warmupMs: 0, maxP99Ms: 0.001 });
  assert.equal(byP99.levels.length, 1);
  assert.match(byP99.stoppedEarly!, /p99/);
  const failing = await countingServer(t, (_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  const byErrors = await runSweep({ url: failing.url, levels: [1, 2, 4], durationMs: 150, warmupMs: 0 });
  assert.equal(byErrors.levels.length, 1);
  assert.match(byErrors.stoppedEarly!, /errors reached 100\.00%/);
});

test("a rate sweep runs the open model at each rate, with concurrency from Little's law", async (t) => {
  const server = await countingServer(t);
  const result = await runSweep({
    url: server.url,
    mode: 'rate',
    levels: [200, 400, 800],
    connections: 8,
    durationMs: 300,
    warmupMs: 0,
  });
  assert.equal(result.mode, 'rate');
  assert.equal(result.connections, 8);
  for (const level of result.levels) {
    assert.notEqual(level.notSentOnTime, null);
    assert.ok(level.concurrency > 0 && level.concurrency < 8);
  }
});

test('sweep --out writes results.json, results.csv, report.html and three SVG charts', async (t) => {
  const server = await countingServer(t);
  const out = path.join(tempDir(t, 'ns-sweep-'), 'nested', 'out');
  const run = await runCli(['sweep', server.url, '--levels', '1,2,4', '-d', '200ms', '--warmup', '0', '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Knee \(max power/);
  assert.match(run.stdout, /USL fit: σ = /);
  const json = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(json.levels.length, 3);
  assert.ok('power' in json.knee && 'usl' in json.knee);
  const csv = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 4);
  assert.match(csv[0]!, /^level,concurrency,throughput,p50/);
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.equal(html.match(/<svg /g)?.length, 3);
  assert.doesNotMatch(html, /<script|<link|src="http/, 'self-contained: no scripts, no external resources');
  for (const name of ['throughput.svg', 'latency.svg', 'latency-vs-throughput.svg']) {
    const svg = readFileSync(path.join(out, name), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /knee/);
  }
});

// A regression here would hang (Node's recursive mkdir loops on procfs): the timeout makes it a failure.
test('an --out that cannot be written fails before the run starts, procfs included', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-out-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'x');
  // Nothing listens on port 1: had the sweep started first, this would fail with an unreachable target instead.
  for (const out of [path.join(file, 'sub'), file, '/proc/nodescale-out', '/proc/nodescale-out/deeper']) {
    const run = await runCli(['sweep', 'http://127.0.0.1:1/', '--levels', '1', '--out', out]);
    assert.equal(run.code, 1, out);
    assert.match(run.stderr, /^error NS_ERR_OUTPUT: cannot write to --out/, out);
  }
  const compare = await runCli(['compare-servers', '--servers', 'tcp', '-d', '100ms', '--out', '/proc/nodescale-out']);
  assert.equal(compare.code, 1);
  assert.match(compare.stderr, /^error NS_ERR_OUTPUT: cannot write to --out \/proc\/nodescale-out/);
});
