/**
 * Terminal views of results: a bench result as wrk and autocannon users expect to read it.
 */
import { formatBytes, formatCount, formatMs } from '../../units.ts';
import type { BenchResult } from '../aggregate.ts';
import type { ThresholdOutcome } from '../thresholds.ts';
import { PERCENTILES } from '../histogram.ts';
import { renderColumns } from '../../views/columns.ts';

const PERCENTILE_LABEL: Record<string, string> = {
  p50: 'p50',
  p75: 'p75',
  p90: 'p90',
  p99: 'p99',
  p999: 'p99.9',
  p9999: 'p99.99',
};

export function describeLoad(result: BenchResult): string {
  const parts = [`${result.connections} connection${result.connections === 1 ? '' : 's'}`];
  if (result.pipelining > 1) parts.push(`pipelining ${result.pipelining}`);
  if (result.generator.workers > 1) parts.push(`${result.generator.workers} workers`);
  parts.push(result.model === 'open' ? `open model at ${formatCount(result.rate!)} req/s` : 'closed model');
  return parts.join(', ');
}

export function formatBenchResult(result: BenchResult): string {
  const latency = result.latencyMs;
  const keys = PERCENTILES.map(([key]) => key);
  const lines: string[] = [];
  lines.push(`${result.url} — ${(result.durationMs / 1000).toFixed(1)}s, ${describeLoad(result)}`, '');
  lines.push(
    renderColumns([
      ['Latency', ...keys.map((key) => PERCENTILE_LABEL[key]!), 'max', 'mean', 'stdev'],
      [
        '',
        ...keys.map((key) => formatMs(latency[key])),
        formatMs(latency.max),
        formatMs(latency.mean),
        formatMs(latency.stdev),
      ],
    ]),
    '',
  );
  const statuses = Object.entries(result.statusCodes)
    .map(([code, count]) => `${code}: ${count}`)
    .join('  ');
  const { errors } = result;
  const errorDetail = (['connect', 'tls', 'reset', 'timeout', 'parse', 'non2xx'] as const)
    .filter((kind) => errors[kind] > 0)
    .map((kind) => `${kind === 'non2xx' ? 'non-2xx' : kind} ${errors[kind]}`)
    .join(', ');
  const rows = [
    [
      'Requests',
      `${formatCount(result.requests.total)} total`,
      `${formatCount(Math.round(result.requests.perSecond))}/s`,
    ],
    ['Bytes', formatBytes(result.bytes.total), `${formatBytes(Math.round(result.bytes.perSecond))}/s`],
  ];
  lines.push(renderColumns(rows));
  lines.push(`Status      ${statuses || 'none'}`);
  lines.push(`Errors      ${errors.total === 0 ? 'none' : `${errors.total} (${errorDetail})`}`);
  if (result.notSentOnTime !== null)
    lines.push(`Late        ${result.notSentOnTime} requests not sent on time (of ${result.requests.sent} sent)`);
  lines.push(`Generator   ${result.generator.cpuMicrosPerRequest.toFixed(1)} µs CPU per request`);
  if (result.requestSet.order !== 'single')
    lines.push(
      `Requests    ${result.requestSet.requests} × ${result.requestSet.rows} row${result.requestSet.rows === 1 ? '' : 's'}, ${result.requestSet.order === 'weighted' ? `weighted at random (seed ${result.requestSet.seed})` : 'in order'}`,
    );
  if (result.byName !== null) lines.push('', formatByName(result.byName));
  return lines.join('\n');
}

/** Per request name: requests, rate, latency percentiles and status codes. */
export function formatByName(byName: NonNullable<BenchResult['byName']>): string {
  const rows = [['Name', 'requests', 'req/s', 'p50', 'p90', 'p99', 'max', 'status']];
  for (const [name, entry] of Object.entries(byName)) {
    const l = entry.latencyMs;
    rows.push([
      name,
      formatCount(entry.requests.total),
      formatCount(Math.round(entry.requests.perSecond)),
      formatMs(l.p50),
      formatMs(l.p90),
      formatMs(l.p99),
      formatMs(l.max),
      Object.entries(entry.statusCodes)
        .map(([code, count]) => `${code}: ${count}`)
        .join(' '),
    ]);
  }
  return renderColumns(rows);
}

/** Each threshold, passed or failed, with the figure it was judged on. */
export function formatThresholds(outcomes: readonly ThresholdOutcome[]): string {
  return outcomes
    .map(
      (outcome, i) =>
        `${i === 0 ? 'Thresholds ' : '           '} ${outcome.passed ? '✓' : '✗'} ${outcome.threshold}  (${outcome.detail})`,
    )
    .join('\n');
}
