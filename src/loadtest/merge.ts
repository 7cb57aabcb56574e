/**
 * Merging the results of several generator machines into one, exactly: counts are added, and latency percentiles
 * are read from the sum of the runs' histograms — never an average of their percentiles, which is wrong whenever
 * the runs differ (docs/bench.md has the figure).
 *
 * Throughput is the sum of each run's own rate (requests ÷ its measured time, on its own monotonic clock): what the
 * target served while all ran, with no comparison of two machines' wall clocks. The wall-clock window and how much
 * the runs overlapped are reported beside it, as a check that they did run together (clock skew shifts it).
 *
 * A result file comes from another machine: it is checked field by field, and its histograms' headers before they
 * are decoded (a forged header could otherwise ask for any amount of memory).
 */
import { inflateSync } from 'node:zlib';
import { NodescaleError } from '../errors.ts';
import { RESULT_FORMAT, type BenchResult, type NamedResult } from './aggregate.ts';
import { createLatencyHistogram, decodeHistogram, encodeHistogram, summarize, type Histogram } from './histogram.ts';

export interface MergedResult extends BenchResult {
  merged: {
    runs: number;
    /** The wall-clock time during which every run was measuring, ms (0: they never all ran at once). */
    overlapMs: number;
    /** From the first start to the last end, ms. */
    windowMs: number;
  };
}

/** A histogram of a result file may be this long, base64 (a µs histogram up to hours is a few KiB). */
const MAX_HISTOGRAM_CHARS = 1024 * 1024;
/** The highest value a histogram of a result may track, µs: about 12 days. */
const MAX_TRACKABLE_MICROS = 2 ** 40;

/** HdrHistogram's V2 compressed encoding starts with this. */
const COMPRESSED_COOKIE = 0x1c849304 | 0x10;

function refuse(label: string, why: string): NodescaleError {
  return new NodescaleError('NS_ERR_MERGE', `${label}: ${why}`);
}

/** Decodes a histogram of an untrusted result, its header checked first. */
function decodeUntrusted(encoded: unknown, label: string, field: string): Histogram {
  if (typeof encoded !== 'string' || encoded.length === 0)
    throw refuse(label, `has no ${field} (results of nodescale before 0.3 carry none: run bench --json again)`);
  if (encoded.length > MAX_HISTOGRAM_CHARS) throw refuse(label, `${field} is longer than any histogram of a run`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw refuse(label, `${field} is not base64`);
  const outer = Buffer.from(encoded, 'base64');
  try {
    if (outer.length < 8 || outer.readInt32BE(0) !== COMPRESSED_COOKIE)
      throw new Error('no compressed-encoding cookie');
    const length = outer.readInt32BE(4);
    if (length <= 0 || length > outer.length - 8) throw new Error('bad length');
    const inner = inflateSync(outer.subarray(8, 8 + length), { maxOutputLength: 4 * 1024 * 1024 });
    if (inner.length < 40) throw new Error('header too short');
    const digits = inner.readInt32BE(12);
    const lowest = Number(inner.readBigInt64BE(16));
    const highest = Number(inner.readBigInt64BE(24));
    if (digits < 1 || digits > 5 || lowest < 1 || highest < 2 * lowest || highest > MAX_TRACKABLE_MICROS)
      throw new Error(`header out of range (digits ${digits}, range ${lowest}…${highest})`);
  } catch (error) {
    throw refuse(label, `${field} is not an HdrHistogram (${(error as Error).message})`);
  }
  try {
    return decodeHistogram(encoded);
  } catch (error) {
    throw refuse(label, `${field} cannot be decoded (${(error as Error).message})`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function count(value: unknown, label: string, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw refuse(label, `${field} is not a count`);
  return value;
}

function time(value: unknown, label: string, field: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw refuse(label, `${field} is not an ISO 8601 time`);
  return ms;
}

function countsRecord(value: unknown, label: string, field: string): Record<string, number> {
  if (!isObject(value)) throw refuse(label, `${field} is not an object of counts`);
  for (const [key, n] of Object.entries(value)) {
    if (!/^[1-5][0-9]{2}$/.test(key)) throw refuse(label, `${field} has a key that is no status code: ${key}`);
    count(n, label, `${field}.${key}`);
  }
  return value as Record<string, number>;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
}

interface Checked {
  result: BenchResult;
  histogram: Histogram;
  ok: Histogram;
  named: Map<string, Histogram>;
}

/** Checks one result read from a file (`label` names it in errors). */
function check(value: unknown, label: string): Checked {
  if (!isObject(value)) throw refuse(label, 'is not a JSON object');
  if (value.format !== RESULT_FORMAT)
    throw refuse(
      label,
      value.format === undefined
        ? `is not a result of nodescale bench --json of format ${RESULT_FORMAT}`
        : `is of format ${JSON.stringify(value.format)}; this nodescale merges ${RESULT_FORMAT}`,
    );
  if (typeof value.url !== 'string') throw refuse(label, 'has no url');
  const requests = value.requests as Record<string, unknown> | undefined;
  if (!isObject(requests)) throw refuse(label, 'has no requests');
  for (const field of ['total', 'sent', 'perSecond']) count(requests[field], label, `requests.${field}`);
  count(value.durationMs, label, 'durationMs');
  count(value.connections, label, 'connections');
  time(value.startedAt, label, 'startedAt');
  time(value.endedAt, label, 'endedAt');
  countsRecord(value.statusCodes, label, 'statusCodes');
  const errors = value.errors as Record<string, unknown> | undefined;
  if (!isObject(errors)) throw refuse(label, 'has no errors');
  for (const kind of ['connect', 'tls', 'reset', 'timeout', 'parse', 'non2xx', 'total'])
    count(errors[kind], label, `errors.${kind}`);
  const histogram = decodeUntrusted(value.histogram, label, 'histogram');
  const ok = decodeUntrusted(value.histogram2xx, label, 'histogram2xx');
  // A histogram that does not hold the result's requests would merge into figures that describe no run.
  if (histogram.totalCount !== requests.total)
    throw refuse(
      label,
      `its histogram holds ${histogram.totalCount} samples but it counts ${String(requests.total)} requests`,
    );
  const named = new Map<string, Histogram>();
  if (value.byName !== null && value.byName !== undefined) {
    if (!isObject(value.byName)) throw refuse(label, 'byName is not an object');
    for (const [name, entry] of Object.entries(value.byName)) {
      if (!isObject(entry) || !isObject(entry.requests)) throw refuse(label, `byName.${name} is not a named result`);
      count(entry.requests.total, label, `byName.${name}.requests.total`);
      countsRecord(entry.statusCodes, label, `byName.${name}.statusCodes`);
      named.set(name, decodeUntrusted(entry.histogram, label, `byName.${name}.histogram`));
    }
  }
  return { result: value as unknown as BenchResult, histogram, ok, named };
}

/** Merges results (`labels` name them in errors: their files). */
export function mergeResults(
  values: unknown[],
  labels: string[] = values.map((_, i) => `result ${i + 1}`),
): MergedResult {
  if (values.length < 1) throw new NodescaleError('NS_ERR_USAGE', 'merge needs at least one result');
  const runs = values.map((value, i) => check(value, labels[i]!));
  const first = runs[0]!.result;
  for (const [i, { result }] of runs.entries())
    if (result.url !== first.url)
      throw refuse(labels[i]!, `was taken against ${result.url}, not ${first.url}: merge runs against one target`);
  for (const [i, { result }] of runs.entries())
    if (result.model !== first.model)
      throw refuse(
        labels[i]!,
        `is a ${result.model}-model run, the first a ${first.model}-model one: merge runs of one model`,
      );
  const max = Math.max(...runs.map(({ histogram }) => histogram.highestTrackableValue));
  const histogram = createLatencyHistogram(max);
  const ok = createLatencyHistogram(max);
  const statusCodes: Record<string, number> = {};
  const errors = { connect: 0, tls: 0, reset: 0, timeout: 0, parse: 0, non2xx: 0, total: 0 };
  let total = 0;
  let sent = 0;
  let perSecond = 0;
  let bytes = 0;
  let bytesPerSecond = 0;
  let cpuMicros = 0;
  let workers = 0;
  let connections = 0;
  let rate: number | null = 0;
  let notSentOnTime: number | null = 0;
  const named = new Map<
    string,
    { histogram: Histogram; total: number; perSecond: number; statusCodes: Record<string, number> }
  >();
  for (const run of runs) {
    const { result } = run;
    histogram.add(run.histogram);
    ok.add(run.ok);
    addCounts(statusCodes, result.statusCodes);
    for (const kind of Object.keys(errors) as (keyof typeof errors)[]) errors[kind] += result.errors[kind] ?? 0;
    total += result.requests.total;
    sent += result.requests.sent;
    perSecond += result.requests.perSecond;
    bytes += Number(result.bytes?.total) || 0;
    bytesPerSecond += Number(result.bytes?.perSecond) || 0;
    cpuMicros += Number(result.generator?.cpuMicros) || 0;
    workers += Number(result.generator?.workers) || 0;
    connections += result.connections;
    rate = rate === null || typeof result.rate !== 'number' ? null : rate + result.rate;
    notSentOnTime =
      notSentOnTime === null || typeof result.notSentOnTime !== 'number' ? null : notSentOnTime + result.notSentOnTime;
    for (const [name, h] of run.named) {
      const entry = result.byName![name]!;
      let into = named.get(name);
      if (into === undefined)
        named.set(name, (into = { histogram: createLatencyHistogram(max), total: 0, perSecond: 0, statusCodes: {} }));
      into.histogram.add(h);
      into.total += entry.requests.total;
      into.perSecond += Number(entry.requests.perSecond) || 0;
      addCounts(into.statusCodes, entry.statusCodes);
    }
  }
  const starts = runs.map(({ result }) => Date.parse(result.startedAt));
  const ends = runs.map(({ result }) => Date.parse(result.endedAt));
  const startedAt = Math.min(...starts);
  const endedAt = Math.max(...ends);
  const byName: Record<string, NamedResult> | null =
    named.size === 0
      ? null
      : Object.fromEntries(
          [...named].map(([name, entry]) => [
            name,
            {
              requests: { total: entry.total, perSecond: entry.perSecond },
              latencyMs: summarize(entry.histogram),
              statusCodes: entry.statusCodes,
              histogram: encodeHistogram(entry.histogram),
            },
          ]),
        );
  return {
    ...first,
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    connections,
    rate: first.model === 'open' ? rate : null,
    durationMs: Math.max(...runs.map(({ result }) => result.durationMs)),
    requests: { total, sent, perSecond },
    latencyMs: summarize(histogram),
    latencyMs2xx: summarize(ok),
    statusCodes,
    histogram: encodeHistogram(histogram),
    histogram2xx: encodeHistogram(ok),
    byName,
    errors,
    bytes: { total: bytes, perSecond: bytesPerSecond },
    notSentOnTime: first.model === 'open' ? notSentOnTime : null,
    generator: { workers, cpuMicros, cpuMicrosPerRequest: total > 0 ? cpuMicros / total : 0 },
    merged: {
      runs: runs.length,
      overlapMs: Math.max(0, Math.min(...ends) - Math.max(...starts)),
      windowMs: endedAt - startedAt,
    },
  };
}
