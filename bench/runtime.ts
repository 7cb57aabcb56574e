/**
 * The runtime layer's two claims, measured side by side in one run:
 * - overhead: throughput of a node:http hello server with protect() on ÷ off, at the knee concurrency (goal ≥ 0.97);
 * - shedding: a CPU-bound route (5 ms a request) offered 4× its knee throughput in the open model: the p99 of accepted
 *   requests with protection ÷ the p99 at the knee (goal ≤ 2), next to the same ratio without protection.
 */
import path from 'node:path';
import { runBench } from '../src/loadtest/run.ts';
import { runSweep } from '../src/loadtest/sweep.ts';
import { BENCH_DIR, median, startServer } from './lib.ts';

const SERVER = path.join(BENCH_DIR, 'servers', 'http.ts');

export interface OverheadFigures {
  kneeConcurrency: number;
  ratios: number[];
  ratio: number;
}

export async function protectOverhead(options: { seconds: number; rounds: number }): Promise<OverheadFigures> {
  const off = await startServer([SERVER]);
  const on = await startServer([SERVER, '--protect', '{}']);
  try {
    const sweep = await runSweep({ url: off.url, levels: [1, 2, 4, 8, 16, 32, 64], durationMs: 1500, warmupMs: 500 });
    const knee = sweep.levels[sweep.knee.power!.index]!.level;
    console.error(`  knee of the hello server: ${knee} connections`);
    const ratios: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const pair = round % 2 === 0 ? [off, on] : [on, off];
      const rps = new Map<string, number>();
      for (const target of pair) {
        const r = await runBench({ url: target.url, connections: knee, durationMs: options.seconds * 1000, warmupMs: 1000 });
        rps.set(target.url, r.requests.perSecond);
      }
      ratios.push(rps.get(on.url)! / rps.get(off.url)!);
      console.error(`  round ${round + 1}: on ÷ off = ${ratios.at(-1)!.toFixed(3)}`);
    }
    return { kneeConcurrency: knee, ratios, ratio: median(ratios) };
  } finally {
    off.stop();
    on.stop();
  }
}

export interface SheddingFigures {
  blockMs: number;
  knee: { concurrency: number; throughput: number; p99Ms: number };
  offeredRate: number;
  protectedRun: { p99Ms2xx: number; ratioToKnee: number; served: number; shed: number };
  unprotectedRun: { p99Ms2xx: number; ratioToKnee: number; served: number };
}

export async function sheddingUnderOverload(options: { seconds: number }): Promise<SheddingFigures> {
  const blockMs = 5;
  const plain = await startServer([SERVER, '--block', String(blockMs)]);
  try {
    const sweep = await runSweep({ url: plain.url, levels: [1, 2, 4, 8], durationMs: 2000, warmupMs: 500 });
    const kneeLevel = sweep.levels[sweep.knee.power!.index]!;
    const knee = { concurrency: kneeLevel.level, throughput: kneeLevel.throughput, p99Ms: kneeLevel.latencyMs.p99 };
    const rate = 4 * knee.throughput;
    console.error(`  knee: ${knee.concurrency} connections, ${Math.round(knee.throughput)} req/s, p99 ${knee.p99Ms} ms; offering ${Math.round(rate)} req/s`);
    // The lag limit set from the sweep, as the docs advise: half the p99 at the knee. A served request waits for at
    // most the batch before its own and its place in its own, each bounded by the limit: about twice the limit.
    const guarded = await startServer([SERVER, '--block', String(blockMs), '--protect', JSON.stringify({ overload: { maxLagMs: knee.p99Ms / 2 } })]);
    try {
      const load = { rate, connections: 64, durationMs: options.seconds * 1000, timeoutMs: 60_000 };
      const withGuard = await runBench({ url: guarded.url, ...load });
      const without = await runBench({ url: plain.url, ...load });
      return {
        blockMs,
        knee,
        offeredRate: rate,
        protectedRun: {
          p99Ms2xx: withGuard.latencyMs2xx.p99,
          ratioToKnee: withGuard.latencyMs2xx.p99 / knee.p99Ms,
          served: withGuard.statusCodes['200'] ?? 0,
          shed: withGuard.statusCodes['503'] ?? 0,
        },
        unprotectedRun: { p99Ms2xx: without.latencyMs2xx.p99, ratioToKnee: without.latencyMs2xx.p99 / knee.p99Ms, served: without.statusCodes['200'] ?? 0 },
      };
    } finally {
      guarded.stop();
    }
  } finally {
    plain.stop();
  }
}
