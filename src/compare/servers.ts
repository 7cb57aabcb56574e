/**
 * The talk's baseline benchmark: plain TCP vs plain http vs frameworks, side by side in one run. Each server runs in
 * its own process; the servers are benchmarked in alternating rounds (the order rotated every round) with the same
 * settings, and each figure is the median over the rounds, so a noisy moment hurts one sample, not one server.
 */
import { HELLO_KINDS, type HelloKind } from '../hello/index.ts';
import { spawnHello, type SpawnedServer } from '../hello/spawn.ts';
import { invalidOption } from '../errors.ts';
import type { BenchResult } from '../loadtest/aggregate.ts';
import type { BenchOptions } from '../loadtest/options.ts';
import { runBench, type BenchProgress } from '../loadtest/run.ts';

export interface CompareOptions extends Omit<BenchOptions, 'url' | 'amount' | 'rate'> {
  /** Default all four, in the talk's order of overhead. */
  servers?: HelloKind[];
  /** Default 3. */
  rounds?: number;
  /**
   * Serve and load every server over https:, with this certificate and key (PEM files). The servers are ours, started
   * for the run: their certificate is not verified (the handshake and encryption cost the same either way).
   */
  tls?: { certFile: string; keyFile: string };
}

export interface ServerFigures {
  server: HelloKind;
  /** Median over rounds, req/s. */
  throughput: number;
  /** Median over rounds of the mean and of the p99 latency, ms. */
  latencyMeanMs: number;
  latencyP99Ms: number;
  /** throughput ÷ the TCP server's; latency ÷ the TCP server's (null without a TCP run). */
  throughputRatio: number | null;
  latencyRatio: number | null;
  errors: number;
  runs: BenchResult[];
}

export interface CompareResult {
  connections: number;
  durationMs: number;
  rounds: number;
  /** The servers were loaded over https:. */
  tls: boolean;
  servers: ServerFigures[];
}

export interface CompareControl {
  onRunStart?: (round: number, server: HelloKind, index: number, total: number) => void;
  onProgress?: (progress: BenchProgress) => void;
  signal?: AbortSignal;
}

export const COMPARE_DEFAULTS = Object.freeze({ connections: 64, durationMs: 3000, warmupMs: 1000, rounds: 3 });

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function compareServers(
  options: CompareOptions = {},
  control: CompareControl = {},
): Promise<CompareResult> {
  const servers = options.servers ?? [...HELLO_KINDS];
  if (servers.length === 0 || servers.some((s) => !HELLO_KINDS.includes(s)))
    throw invalidOption('servers', `a list of ${HELLO_KINDS.join(', ')}`, servers);
  const rounds = options.rounds ?? COMPARE_DEFAULTS.rounds;
  if (!Number.isInteger(rounds) || rounds < 1) throw invalidOption('rounds', 'an integer ≥ 1', rounds);
  const { servers: _servers, rounds: _rounds, tls, ...bench } = options;
  const settings = {
    connections: COMPARE_DEFAULTS.connections,
    durationMs: COMPARE_DEFAULTS.durationMs,
    warmupMs: COMPARE_DEFAULTS.warmupMs,
    ...bench,
    ...(tls === undefined ? {} : { insecure: true }),
  };
  const started: SpawnedServer[] = [];
  const runs = new Map<HelloKind, BenchResult[]>(servers.map((s) => [s, []]));
  try {
    for (const server of servers) started.push(await spawnHello(server, tls === undefined ? {} : { tls }));
    const total = rounds * servers.length;
    let index = 0;
    for (let round = 0; round < rounds && !control.signal?.aborted; round++) {
      // Rotate the order each round, so that no server always runs first (or right after the heaviest).
      const order = started.map((_, i) => started[(i + round) % started.length]!);
      for (const target of order) {
        if (control.signal?.aborted) break;
        control.onRunStart?.(round, target.kind, index++, total);
        const result = await runBench(
          { ...settings, url: target.url },
          {
            ...(control.onProgress ? { onProgress: control.onProgress } : {}),
            ...(control.signal ? { signal: control.signal } : {}),
          },
        );
        runs.get(target.kind)!.push(result);
      }
    }
  } finally {
    await Promise.all(started.map((server) => server.stop()));
  }
  const figures = servers
    .filter((server) => runs.get(server)!.length > 0)
    .map((server) => {
      const results = runs.get(server)!;
      return {
        server,
        throughput: median(results.map((r) => r.requests.perSecond)),
        latencyMeanMs: median(results.map((r) => r.latencyMs.mean)),
        latencyP99Ms: median(results.map((r) => r.latencyMs.p99)),
        throughputRatio: null as number | null,
        latencyRatio: null as number | null,
        errors: results.reduce((sum, r) => sum + r.errors.total, 0),
        runs: results,
      };
    });
  const tcp = figures.find((f) => f.server === 'tcp');
  if (tcp !== undefined) {
    for (const f of figures) {
      f.throughputRatio = f.throughput / tcp.throughput;
      f.latencyRatio = f.latencyMeanMs / tcp.latencyMeanMs;
    }
  }
  return {
    connections: settings.connections,
    durationMs: settings.durationMs,
    rounds,
    tls: tls !== undefined,
    servers: figures,
  };
}
