/**
 * Turns what the generators counted into a bench result: data only, no presentation.
 */
import type { ErrorCounts, GeneratorOutcome } from './generator.ts';
import { encodeHistogram, summarize, type Histogram, type LatencySummary } from './histogram.ts';
import type { ResolvedBenchOptions } from './options.ts';

/** The format of a bench result: `nodescale merge` refuses one it was not written for. */
export const RESULT_FORMAT = 'nodescale-bench/1';

/** The results of the requests of one name. */
export interface NamedResult {
  requests: { total: number; perSecond: number };
  latencyMs: LatencySummary;
  statusCodes: Record<string, number>;
  /** HdrHistogram of the latencies (µs), compressed, base64. */
  histogram: string;
}

export interface BenchResult {
  format: typeof RESULT_FORMAT;
  url: string;
  /** Wall-clock start and end of the measured phase (ISO 8601): which runs of several machines overlapped. */
  startedAt: string;
  endedAt: string;
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
  /** The latency histogram of every response (µs; HdrHistogram's compressed encoding, base64): what merges exactly. */
  histogram: string;
  /** The same, of the 2xx responses only. */
  histogram2xx: string;
  /** Per request name, when the requests file names them; null otherwise. */
  byName: Record<string, NamedResult> | null;
  /** How the requests were chosen: one request, in order, or weighted at random from `seed`. */
  requestSet: { requests: number; rows: number; order: 'single' | 'sequence' | 'weighted'; seed: number | null };
  /** total = connect + tls + reset + timeout + parse + non2xx. */
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

export interface MergedHistograms {
  histogram: Histogram;
  ok: Histogram;
  /** Per request name. */
  kindHistograms: Histogram[];
}

function statusRecord(byStatus: number[]): Record<string, number> {
  const record: Record<string, number> = {};
  byStatus.forEach((count, status) => {
    if (count > 0) record[String(status)] = count;
  });
  return record;
}

export function aggregate(
  options: ResolvedBenchOptions,
  outcomes: GeneratorOutcome[],
  { histogram, ok, kindHistograms }: MergedHistograms,
  cpu: CpuSpan,
  wall: { startedAt: number; endedAt: number },
): BenchResult {
  let completed = 0;
  let sent = 0;
  let bytes = 0;
  let notSentOnTime = 0;
  let elapsedMs = 0;
  const errors: ErrorCounts = { connect: 0, reset: 0, timeout: 0, parse: 0, tls: 0 };
  const byStatus = new Array<number>(600).fill(0);
  const names = options.requests.names;
  const kinds = names.map(() => ({ completed: 0, byStatus: new Array<number>(600).fill(0) }));
  for (const { counters, elapsedMs: elapsed } of outcomes) {
    completed += counters.completed;
    sent += counters.sent;
    bytes += counters.bytes;
    notSentOnTime += counters.notSentOnTime;
    elapsedMs = Math.max(elapsedMs, elapsed);
    for (const kind of Object.keys(errors) as (keyof ErrorCounts)[]) errors[kind] += counters.errors[kind];
    counters.statusCodes.forEach((count, status) => (byStatus[status]! += count));
    counters.kinds.forEach((kind, i) => {
      kinds[i]!.completed += kind.completed;
      kind.statusCodes.forEach((count, status) => (kinds[i]!.byStatus[status]! += count));
    });
  }
  const statusCodes = statusRecord(byStatus);
  let non2xx = 0;
  byStatus.forEach((count, status) => {
    if (count > 0 && (status < 200 || status >= 300)) non2xx += count;
  });
  const seconds = elapsedMs / 1000;
  const cpuMicros = cpu.user + cpu.system;
  const set = options.requests;
  const byName: Record<string, NamedResult> | null =
    names.length === 0
      ? null
      : Object.fromEntries(
          names.map((name, i) => [
            name,
            {
              requests: { total: kinds[i]!.completed, perSecond: seconds > 0 ? kinds[i]!.completed / seconds : 0 },
              latencyMs: summarize(kindHistograms[i]!),
              statusCodes: statusRecord(kinds[i]!.byStatus),
              histogram: encodeHistogram(kindHistograms[i]!),
            },
          ]),
        );
  const order = set.weights !== null ? 'weighted' : set.templates * set.rows === 1 ? 'single' : 'sequence';
  return {
    format: RESULT_FORMAT,
    url: options.target.url.href,
    startedAt: new Date(wall.startedAt).toISOString(),
    endedAt: new Date(wall.endedAt).toISOString(),
    model: options.rate === null ? 'closed' : 'open',
    connections: options.connections,
    pipelining: options.pipelining,
    rate: options.rate,
    durationMs: Math.round(elapsedMs),
    requests: { total: completed, sent, perSecond: seconds > 0 ? completed / seconds : 0 },
    latencyMs: summarize(histogram),
    latencyMs2xx: summarize(ok),
    statusCodes,
    histogram: encodeHistogram(histogram),
    histogram2xx: encodeHistogram(ok),
    byName,
    requestSet: {
      requests: set.templates,
      rows: set.rows,
      order,
      seed: order === 'weighted' ? set.seed : null,
    },
    errors: {
      ...errors,
      non2xx,
      total: errors.connect + errors.tls + errors.reset + errors.timeout + errors.parse + non2xx,
    },
    bytes: { total: bytes, perSecond: seconds > 0 ? bytes / seconds : 0 },
    notSentOnTime: options.rate === null ? null : notSentOnTime,
    generator: { workers: options.workers, cpuMicros, cpuMicrosPerRequest: completed > 0 ? cpuMicros / completed : 0 },
  };
}
