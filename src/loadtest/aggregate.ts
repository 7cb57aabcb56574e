/**
 * Turns what the generators counted into a bench result: data only, no presentation.
 */
import type { ErrorCounts, GeneratorOutcome } from './generator.ts';
import { summarize, type Histogram, type LatencySummary } from './histogram.ts';
import type { ResolvedBenchOptions } from './options.ts';

export interface BenchResult {
  url: string;
  /** 'closed': each connection waits for its responses; 'open': requests leave at `rate` whatever happens. */
  model: 'closed' | 'open';
  connections: number;
  pipelining: number;
  rate: number | null;
  /** Measured wall time, ms. */
  durationMs: number;
  requests: { total: number; sent: number; perSecond: number };
  latencyMs: LatencySummary;
  /** Latency of the 2xx responses only: what a client that was served saw (a fast 503 does not pull it down). */
  latencyMs2xx: LatencySummary;
  /** Completed responses by status code. */
  statusCodes: Record<string, number>;
  /** total = connect + reset + timeout + parse + non2xx. */
  errors: ErrorCounts & { non2xx: number; total: number };
  bytes: { total: number; perSecond: number };
  /** Open model: requests that left more than 10 ms late or never left; null in the closed model. */
  notSentOnTime: number | null;
  generator: { workers: number; cpuMicros: number; cpuMicrosPerRequest: number };
}

export interface CpuSpan {
  user: number;
  system: number;
}

export function aggregate(
  options: ResolvedBenchOptions,
  outcomes: GeneratorOutcome[],
  histogram: Histogram,
  ok: Histogram,
  cpu: CpuSpan,
): BenchResult {
  let completed = 0;
  let sent = 0;
  let bytes = 0;
  let notSentOnTime = 0;
  let elapsedMs = 0;
  const errors: ErrorCounts = { connect: 0, reset: 0, timeout: 0, parse: 0 };
  const byStatus = new Array<number>(600).fill(0);
  for (const { counters, elapsedMs: elapsed } of outcomes) {
    completed += counters.completed;
    sent += counters.sent;
    bytes += counters.bytes;
    notSentOnTime += counters.notSentOnTime;
    elapsedMs = Math.max(elapsedMs, elapsed);
    for (const kind of Object.keys(errors) as (keyof ErrorCounts)[]) errors[kind] += counters.errors[kind];
    counters.statusCodes.forEach((count, status) => (byStatus[status]! += count));
  }
  const statusCodes: Record<string, number> = {};
  let non2xx = 0;
  byStatus.forEach((count, status) => {
    if (count === 0) return;
    statusCodes[String(status)] = count;
    if (status < 200 || status >= 300) non2xx += count;
  });
  const seconds = elapsedMs / 1000;
  const cpuMicros = cpu.user + cpu.system;
  return {
    url: options.target.url.href,
    model: options.rate === null ? 'closed' : 'open',
    connections: options.connections,
    pipelining: options.pipelining,
    rate: options.rate,
    durationMs: Math.round(elapsedMs),
    requests: { total: completed, sent, perSecond: seconds > 0 ? completed / seconds : 0 },
    latencyMs: summarize(histogram),
    latencyMs2xx: summarize(ok),
    statusCodes,
    errors: { ...errors, non2xx, total: errors.connect + errors.reset + errors.timeout + errors.parse + non2xx },
    bytes: { total: bytes, perSecond: seconds > 0 ? bytes / seconds : 0 },
    notSentOnTime: options.rate === null ? null : notSentOnTime,
    generator: { workers: options.workers, cpuMicros, cpuMicrosPerRequest: completed > 0 ? cpuMicros / completed : 0 },
  };
}
