import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildFrames, renderFlameGraph, type CpuProfile } from '../../src/admin/flamegraph.ts';
import { chartWidth, renderCharts, sparkline } from '../../src/cli/charts.ts';
import { emptyGc } from '../../src/runtime/sampler.ts';

const frame = (id: number, functionName: string, url: string, children: number[] = [], hitCount = 0) => ({
  id,
  callFrame: { functionName, url, lineNumber: 9, columnNumber: 0 },
  hitCount,
  children,
});

// root → (idle) 50 samples; root → handler 30 (self 10) → parse 20.
const profile: CpuProfile = {
  nodes: [
    frame(1, '(root)', '', [2, 3]),
    frame(2, '(idle)', '', [], 50),
    frame(3, 'handler', 'file:///app/server.js', [4], 10),
    frame(4, 'parse', 'node:internal/url', [], 20),
  ],
  samples: [...Array(50).fill(2), ...Array(10).fill(3), ...Array(20).fill(4)],
  timeDeltas: Array(80).fill(1000),
};

test('flame graph: time per frame from samples, idle left out, totals include callees', () => {
  const root = buildFrames(profile)!;
  assert.equal(root.totalUs, 30_000, 'idle is not counted');
  const handler = root.children[0]!;
  assert.equal(handler.node.callFrame.functionName, 'handler');
  assert.equal(handler.selfUs, 10_000);
  assert.equal(handler.totalUs, 30_000);
  assert.equal(handler.children[0]!.totalUs, 20_000);
  const svg = renderFlameGraph(profile, 'test');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(svg, /\(idle\)/);
  assert.match(svg, /<title>handler \(\/app\/server\.js:10\)\ntotal 30\.0 ms \(100\.0%\), self 10\.0 ms<\/title>/);
  assert.match(svg, /<title>parse \(node:internal\/url:10\)\ntotal 20\.0 ms \(66\.7%\)/);
  assert.doesNotMatch(svg, /<script/);
});

test('sparklines scale to the window maximum; charts show the latest value', () => {
  assert.equal(sparkline([0, 1, 2, 4, 8], 5), '▁▂▃▅█');
  assert.equal(sparkline([0, 0], 4), '▁▁  ');
  const sample = (p99: number) => ({
    time: 0,
    intervalMs: 1000,
    eventLoop: { delayP50Ms: 0, delayP99Ms: p99, delayMaxMs: p99, utilization: 0.5 },
    cpu: { percent: 40 },
    memory: { rss: 0, heapUsed: 1024 * 1024, heapTotal: 0, heapLimit: 1, external: 0, arrayBuffers: 0 },
    gc: emptyGc(),
    activeResources: 0,
    http: { requestsPerSecond: 100, shedPerSecond: 0, inFlight: 2 },
  });
  const charts = renderCharts([sample(1), sample(12)], 10);
  assert.match(charts, /^event-loop p99\s+▂█\s+12\.0ms\s+max 12\.0ms$/m);
  assert.match(charts, /^heap used .* 1\.00 MiB/m);
  // In a narrow terminal every line fits (a wrapped line breaks the redraw in place), however large the values.
  const big = {
    ...sample(123_456),
    memory: { ...sample(1).memory, heapUsed: 1023 * 1024 ** 3 },
    http: { requestsPerSecond: 1_234_567, shedPerSecond: 0, inFlight: 123_456 },
  };
  for (const columns of [60, 80, 200]) {
    for (const line of renderCharts([big, big], chartWidth(columns)).split('\n'))
      assert.ok([...line].length < columns, `${columns} columns: ${line}`);
  }
});
