import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareServers } from '../../src/compare/servers.ts';
import { compareSvg } from '../../src/compare/report.ts';
import { runCli } from '../helpers/cli.ts';

test('compare-servers benchmarks each server in its own process, in alternating rounds, with ratios to tcp', async () => {
  const order: string[] = [];
  const result = await compareServers(
    { servers: ['tcp', 'http', 'express'], rounds: 2, durationMs: 200, warmupMs: 0, connections: 4 },
    { onRunStart: (round, server) => order.push(`${round}:${server}`) },
  );
  assert.deepEqual(order, ['0:tcp', '0:http', '0:express', '1:http', '1:express', '1:tcp']);
  assert.deepEqual(
    result.servers.map((s) => s.server),
    ['tcp', 'http', 'express'],
  );
  const tcp = result.servers[0]!;
  assert.equal(tcp.throughputRatio, 1);
  for (const figures of result.servers) {
    assert.equal(figures.runs.length, 2);
    assert.ok(figures.throughput > 0);
    assert.equal(figures.errors, 0);
    assert.ok(Math.abs(figures.throughputRatio! - figures.throughput / tcp.throughput) < 1e-12);
  }
});

test("compare-servers prints the talk's table; bad --servers is a usage error", async () => {
  const run = await runCli([
    'compare-servers',
    '--servers',
    'tcp,fastify',
    '-r',
    '1',
    '-d',
    '200ms',
    '--warmup',
    '0',
    '-c',
    '4',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /server\s+req\/s\s+vs tcp\s+mean\s+p99/);
  assert.match(run.stdout, /fastify\s+\S+\s+\d\.\d\d×/);
  const bad = await runCli(['compare-servers', '--servers', 'tcp,koa']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /NS_ERR_INVALID_OPTION: --servers: unknown server "koa"/);
  const zero = await runCli(['compare-servers', '-r', '0']);
  assert.equal(zero.code, 2);
  assert.equal(
    zero.stderr,
    'error NS_ERR_INVALID_OPTION: --rounds must be a whole number ≥ 1, got 0\n',
    'refused before any server starts',
  );
});

test('throughput.svg leaves room for its longest label after its longest bar', () => {
  const f = (server: string, throughput: number, ratio: number | null) => ({
    server,
    throughput,
    throughputRatio: ratio,
    latencyMeanMs: 1,
    latencyP99Ms: 2,
    latencyRatio: ratio,
    errors: 0,
  });
  const svg = compareSvg({ connections: 64, servers: [f('tcp', 1_354_000, 1), f('http', 77_100, 0.57)] } as never);
  const width = Number(/width="(\d+)"/.exec(svg)![1]);
  // Each value label: where it starts, plus ~8 px a character of 13 px text (what a browser draws it in, at most).
  for (const [, x, text] of svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" dominant-baseline="middle">([^<]+)<\/text>/g)) {
    assert.ok(Number(x) + 8 * text!.length <= width, `"${text}" at x=${x} runs past ${width}`);
  }
});
