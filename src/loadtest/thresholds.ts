/**
 * Thresholds: a budget a run must meet, k6's `thresholds` in a flag form (`--assert 'p99<50ms'`). Parsed once, at
 * the boundary; evaluated on a result after the run, each passed or failed with the figure it was judged on.
 *
 *   p50 … p99.99, p(95)   a latency percentile, from the histogram itself (any percentile, not only those reported)
 *   mean, max, min        latency
 *   rps                   completed requests per second
 *   errors                every error (connect, tls, reset, timeout, parse, non-2xx); errors.timeout … one kind
 *   status.5xx, status.503, non2xx
 *                         responses by status class or code
 * A count compared with a percentage (`status.5xx<1%`) is a share: of completed responses for statuses, of attempts
 * (completed + failed before a response) for errors. Latency takes ms, s or us (default ms). `{name}` after a
 * latency or status metric judges the requests of that name only: `p99{search}<200ms`.
 */
import { NodescaleError } from '../errors.ts';
import { formatMs } from '../units.ts';
import type { BenchResult } from './aggregate.ts';
import { decodeHistogram } from './histogram.ts';

export type ThresholdOp = '<' | '<=' | '>' | '>=' | '=' | '!=';

export interface Threshold {
  /** As written. */
  source: string;
  metric: string;
  /** Requests of this name only, or null for all. */
  name: string | null;
  op: ThresholdOp;
  /** Latency in ms, a share in [0, 1] when `share`, else a count or rate. */
  value: number;
  share: boolean;
}

export interface ThresholdOutcome {
  threshold: string;
  passed: boolean;
  /** The figure judged: ms for latency, a share in [0, 1], a count, or req/s. */
  actual: number;
  /** "p99 12.3 ms", "status.5xx 0.4 %": what the figure was, for people. */
  detail: string;
}

const FORM =
  /^\s*([a-z][a-z0-9.()_]*)(?:\{([^{}]+)\})?\s*(<=|>=|==|!=|<|>|=)\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|us|µs|%)?\s*$/i;
const LATENCY = /^(?:p\(?([0-9]+(?:\.[0-9]+)?)\)?|mean|avg|max|min)$/;
const KINDS = ['connect', 'tls', 'reset', 'timeout', 'parse', 'non2xx'] as const;

function refuse(source: string, why: string): NodescaleError {
  return new NodescaleError(
    'NS_ERR_THRESHOLD',
    `--assert ${JSON.stringify(source)}: ${why}; a threshold looks like 'p99<50ms', 'errors=0', 'rps>=1000', 'status.5xx<1%'`,
  );
}

type MetricClass = 'latency' | 'rate' | 'count';

function classify(metric: string): MetricClass | null {
  const percentile = LATENCY.exec(metric);
  if (percentile !== null) {
    if (percentile[1] !== undefined) {
      const p = percentileOf(metric);
      if (!(p > 0 && p <= 100)) return null;
    }
    return 'latency';
  }
  if (metric === 'rps') return 'rate';
  if (metric === 'errors' || metric === 'non2xx') return 'count';
  if (metric.startsWith('errors.')) return (KINDS as readonly string[]).includes(metric.slice(7)) ? 'count' : null;
  if (/^status\.(?:[1-5]xx|[1-5][0-9]{2})$/.test(metric)) return 'count';
  return null;
}

/** p99 → 99, p999 → 99.9, p9999 → 99.99, p99.5 → 99.5, p(95) → 95. */
function percentileOf(metric: string): number {
  const digits = /^p\(?([0-9]+(?:\.[0-9]+)?)\)?$/.exec(metric)![1]!;
  if (digits.includes('.') || metric.includes('(') || digits.length <= 2 || digits === '100') return Number(digits);
  return Number(`${digits.slice(0, 2)}.${digits.slice(2)}`);
}

export function parseThreshold(source: string): Threshold {
  if (typeof source !== 'string') throw refuse(String(source), 'not text');
  const match = FORM.exec(source);
  if (match === null) throw refuse(source, 'expected METRIC OP NUMBER[UNIT]');
  const [, rawMetric, name, rawOp, number, unit] = match;
  const metric = rawMetric!.toLowerCase();
  const kind = classify(metric);
  if (kind === null) throw refuse(source, `unknown metric "${rawMetric}"`);
  const op = (rawOp === '==' ? '=' : rawOp) as ThresholdOp;
  let value = Number(number);
  let share = false;
  if (kind === 'latency') {
    if (unit === '%') throw refuse(source, 'a latency is a duration (ms, s, us), not a percentage');
    value = unit === 's' ? value * 1000 : unit === 'us' || unit === 'µs' ? value / 1000 : value;
  } else if (unit === '%') {
    if (kind === 'rate') throw refuse(source, 'rps is a rate, not a percentage');
    share = true;
    value /= 100;
  } else if (unit !== undefined) {
    throw refuse(source, `${metric} is not a duration: no ${unit}`);
  }
  if (name !== undefined && (metric === 'rps' || metric.startsWith('errors')))
    throw refuse(source, `{name} applies to latency and status metrics; ${metric} is over the whole run`);
  return { source, metric, name: name ?? null, op, value, share };
}

function compare(actual: number, op: ThresholdOp, value: number): boolean {
  // A share or latency read back from a histogram is compared with a little tolerance for float noise.
  const epsilon = 1e-9 * Math.max(1, Math.abs(value));
  switch (op) {
    case '<':
      return actual < value - epsilon;
    case '<=':
      return actual <= value + epsilon;
    case '>':
      return actual > value + epsilon;
    case '>=':
      return actual >= value - epsilon;
    case '=':
      return Math.abs(actual - value) <= epsilon;
    case '!=':
      return Math.abs(actual - value) > epsilon;
  }
}

function statusCount(statusCodes: Record<string, number>, metric: string): number {
  const which = metric === 'non2xx' ? 'non2xx' : metric.slice('status.'.length);
  let count = 0;
  for (const [code, n] of Object.entries(statusCodes)) {
    if (which === 'non2xx' ? !code.startsWith('2') : which.endsWith('xx') ? code[0] === which[0] : code === which)
      count += n;
  }
  return count;
}

/** Judges one threshold on a result; refuses a name the result has no requests of. */
export function evaluateThreshold(result: BenchResult, threshold: Threshold): ThresholdOutcome {
  const scope =
    threshold.name === null
      ? { histogram: result.histogram, statusCodes: result.statusCodes, total: result.requests.total }
      : (() => {
          const named = result.byName?.[threshold.name];
          if (named === undefined)
            throw refuse(
              threshold.source,
              `no requests are named "${threshold.name}"${result.byName === null ? ' (the run has no names)' : `; the names are ${Object.keys(result.byName).join(', ')}`}`,
            );
          return { histogram: named.histogram, statusCodes: named.statusCodes, total: named.requests.total };
        })();
  const { metric } = threshold;
  let actual: number;
  let detail: string;
  if (classify(metric) === 'latency') {
    const histogram = decodeHistogram(scope.histogram);
    const micros =
      histogram.totalCount === 0
        ? 0
        : metric === 'mean' || metric === 'avg'
          ? histogram.mean
          : metric === 'max'
            ? histogram.maxValue
            : metric === 'min'
              ? histogram.minNonZeroValue
              : Math.min(histogram.getValueAtPercentile(percentileOf(metric)), histogram.maxValue);
    actual = Math.round(micros) / 1000;
    detail = `${metric} ${formatMs(actual)}`;
  } else if (metric === 'rps') {
    actual = result.requests.perSecond;
    detail = `rps ${actual.toFixed(0)}`;
  } else {
    let count: number;
    let of: number;
    if (metric === 'errors' || metric.startsWith('errors.')) {
      const kind = metric === 'errors' ? 'total' : (metric.slice(7) as (typeof KINDS)[number]);
      count = result.errors[kind];
      const { connect, tls, reset, timeout, parse } = result.errors;
      of = result.requests.total + connect + tls + reset + timeout + parse;
    } else {
      count = statusCount(scope.statusCodes, metric);
      of = scope.total;
    }
    actual = threshold.share ? (of === 0 ? 0 : count / of) : count;
    detail = threshold.share ? `${metric} ${(actual * 100).toFixed(2)} %, ${count} of ${of}` : `${metric} ${count}`;
  }
  if (threshold.name !== null) detail = detail.replace(metric, `${metric}{${threshold.name}}`);
  return { threshold: threshold.source, passed: compare(actual, threshold.op, threshold.value), actual, detail };
}

export function evaluateThresholds(result: BenchResult, thresholds: readonly Threshold[]): ThresholdOutcome[] {
  return thresholds.map((threshold) => evaluateThreshold(result, threshold));
}
