/**
 * Views of a sweep result: the terminal table and knee, CSV, the three charts as SVG, and one self-contained HTML page.
 */
import { formatCount, formatMs } from '../../units.ts';
import { uslThroughput } from '../knee.ts';
import type { SweepResult } from '../sweep.ts';
import { escapeXml, renderChart, type Marker, type Series } from '../../views/svg-chart.ts';
import { renderColumns } from '../../views/columns.ts';

const COLORS = {
  p50: '#1f77b4',
  p90: '#2ca02c',
  p99: '#ff7f0e',
  p999: '#9467bd',
  model: '#7f7f7f',
  measured: '#1f77b4',
};

const levelName = (result: SweepResult) =>
  result.mode === 'rate' ? 'offered rate (req/s)' : 'concurrency (connections)';

/** A share as a percentage that never rounds a few errors to "0.0%": one significant digit below 0.1 %. */
export function percent(ratio: number): string {
  if (ratio === 0) return '0%';
  const p = ratio * 100;
  return p < 0.1 ? `${+p.toPrecision(1)}%` : `${p.toFixed(1)}%`;
}

/** Below it, the USL fit is said to be poor: the levels do not follow the model, and N* is not to be trusted. */
export const POOR_FIT_R2 = 0.9;

export function formatSweepTable(result: SweepResult): string {
  const rows = [['level', 'req/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors', 'CPU µs/req']];
  for (const level of result.levels) {
    rows.push([
      formatCount(level.level),
      formatCount(Math.round(level.throughput)),
      formatMs(level.latencyMs.p50),
      formatMs(level.latencyMs.p90),
      formatMs(level.latencyMs.p99),
      formatMs(level.latencyMs.p999),
      formatMs(level.latencyMs.max),
      level.errors.total === 0 ? '0' : `${level.errors.total} (${percent(level.errorRatio)})`,
      level.cpuMicrosPerRequest.toFixed(1),
    ]);
  }
  return renderColumns(rows);
}

export function formatKnee(result: SweepResult): string {
  const { power, usl, uslSkipped } = result.knee;
  const lines: string[] = [];
  if (power !== null) {
    const level = result.levels[power.index]!;
    const at =
      result.mode === 'rate'
        ? `offer it about ${formatCount(level.level)} req/s`
        : `run it at about ${formatCount(level.level)} connections`;
    lines.push(
      `In short: ${at} (${formatCount(Math.round(power.throughput))} req/s, p99 ${formatMs(level.latencyMs.p99)}); ` +
        'past that, latency grows faster than throughput.',
    );
    lines.push(
      `Knee (max power, throughput ÷ latency): level ${formatCount(level.level)} — ` +
        `${formatCount(Math.round(power.throughput))} req/s at ${formatMs(power.latencyMs)} mean, ${formatMs(level.latencyMs.p99)} p99`,
    );
  }
  if (usl !== null) {
    const peak =
      usl.peakConcurrency === null
        ? 'no peak (κ = 0: throughput does not fall with concurrency)'
        : `peak at N* = ${usl.peakConcurrency.toFixed(1)}, ${formatCount(Math.round(usl.peakThroughput!))} req/s`;
    lines.push(
      `USL fit: σ = ${usl.sigma.toPrecision(3)}, κ = ${usl.kappa.toPrecision(3)}, λ = ${formatCount(Math.round(usl.lambda))} req/s; ${peak}; R² = ${usl.r2.toFixed(3)}`,
    );
    if (usl.r2 < POOR_FIT_R2)
      lines.push(
        `Warning: a poor fit (R² ${usl.r2.toFixed(2)}, below ${POOR_FIT_R2}): the levels do not follow the model ` +
          '(a noisy machine, or a limit the model does not know); do not size by N*. Sweep again, longer per level.',
      );
  } else if (uslSkipped !== null) {
    lines.push(`USL fit: skipped — ${uslSkipped}`);
  }
  if (result.stoppedEarly !== null) lines.push(`Stopped early: ${result.stoppedEarly}`);
  return lines.join('\n');
}

const CSV_COLUMNS = [
  'level',
  'concurrency',
  'throughput',
  'p50',
  'p75',
  'p90',
  'p99',
  'p999',
  'p9999',
  'max',
  'mean',
  'stdev',
  'errors',
  'errorRatio',
  'notSentOnTime',
  'cpuMicrosPerRequest',
];

export function sweepCsv(result: SweepResult): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const l of result.levels) {
    const m = l.latencyMs;
    lines.push(
      [
        l.level,
        l.concurrency,
        l.throughput,
        m.p50,
        m.p75,
        m.p90,
        m.p99,
        m.p999,
        m.p9999,
        m.max,
        m.mean,
        m.stdev,
        l.errors.total,
        l.errorRatio,
        l.notSentOnTime ?? '',
        l.cpuMicrosPerRequest,
      ]
        .map((v) => (typeof v === 'number' ? +v.toPrecision(10) : v))
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface SweepCharts {
  throughput: string;
  latency: string;
  latencyVsThroughput: string;
}

export function sweepCharts(result: SweepResult): SweepCharts {
  const { levels, knee } = result;
  const x = (i: number) => levels[i]!.level;
  const kneeMarkers = (y: (i: number) => number): Marker[] =>
    knee.power === null ? [] : [{ x: x(knee.power.index), y: y(knee.power.index), label: 'knee' }];
  const logX = levels.length > 2 && levels.at(-1)!.level / levels[0]!.level >= 8;

  const throughputSeries: Series[] = [
    { name: 'measured throughput', color: COLORS.measured, points: levels.map((l) => [l.level, l.throughput]) },
  ];
  const throughputMarkers = kneeMarkers((i) => levels[i]!.throughput);
  if (knee.usl !== null && result.mode === 'concurrency') {
    const usl = knee.usl;
    const lo = levels[0]!.concurrency;
    const hi = levels.at(-1)!.concurrency;
    const model: [number, number][] = [];
    for (let i = 0; i <= 60; i++) {
      const n = logX ? lo * (hi / lo) ** (i / 60) : lo + ((hi - lo) * i) / 60;
      model.push([n / result.pipelining, uslThroughput(usl, n)]);
    }
    throughputSeries.push({
      name: `USL fit (R² ${usl.r2.toFixed(3)})`,
      color: COLORS.model,
      dashed: true,
      dots: false,
      points: model,
    });
    if (usl.peakConcurrency !== null && usl.peakConcurrency >= lo / 2 && usl.peakConcurrency <= hi * 2) {
      throughputMarkers.push({
        x: usl.peakConcurrency / result.pipelining,
        label: `USL N* ${usl.peakConcurrency.toFixed(0)}`,
        color: COLORS.model,
      });
    }
  }
  const throughput = renderChart({
    title: 'Throughput vs concurrency',
    xLabel: levelName(result),
    yLabel: 'throughput (req/s)',
    logX,
    series: throughputSeries,
    markers: throughputMarkers,
  });

  const percentiles = [
    ['p50', 'p50'],
    ['p90', 'p90'],
    ['p99', 'p99'],
    ['p999', 'p99.9'],
  ] as const;
  const latency = renderChart({
    title: 'Latency percentiles vs concurrency',
    xLabel: levelName(result),
    yLabel: 'latency (ms, log scale)',
    logX,
    logY: true,
    series: percentiles.map(([key, name]) => ({
      name,
      color: COLORS[key],
      points: levels.map((l) => [l.level, Math.max(l.latencyMs[key], 0.001)] as const),
    })),
    markers: knee.power === null ? [] : [{ x: x(knee.power.index), label: 'knee' }],
  });

  const latencyVsThroughput = renderChart({
    title: 'Latency vs throughput',
    xLabel: 'throughput (req/s)',
    yLabel: 'latency (ms, log scale)',
    logY: true,
    series: (['p50', 'p99'] as const).map((key) => ({
      name: key,
      color: COLORS[key],
      points: levels.map((l) => [l.throughput, Math.max(l.latencyMs[key], 0.001)] as const),
      // Each point says its level: the curve doubles back past the knee, and the x axis alone does not tell.
      ...(key === 'p99'
        ? { labels: levels.map((l) => (result.mode === 'rate' ? `${formatCount(l.level)}/s` : `c${l.level}`)) }
        : {}),
    })),
    markers:
      knee.power === null
        ? []
        : [
            {
              x: levels[knee.power.index]!.throughput,
              y: Math.max(levels[knee.power.index]!.latencyMs.p99, 0.001),
              label: 'knee',
            },
          ],
  });
  return { throughput, latency, latencyVsThroughput };
}

/** What the report says about how it was made: when, with what, and the command that makes it again. */
export interface ReportContext {
  date: Date;
  nodescale: string;
  node: string;
  command: string;
}

export function sweepHtml(result: SweepResult, charts: SweepCharts, context?: ReportContext): string {
  const table = formatSweepTable(result);
  const knee = formatKnee(result);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nodescale sweep — ${escapeXml(result.url)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 780px; color: #222; }
  pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; font-size: 12px; }
  pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
  figure { margin: 1.5rem 0; }
  svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>Sweep of ${escapeXml(result.url)}</h1>
<p>${result.mode === 'rate' ? `Open-model rate sweep over ${result.connections} connections` : 'Concurrency sweep (closed model)'},
${(result.durationMs / 1000).toFixed(1)} s per level after ${(result.warmupMs / 1000).toFixed(1)} s of warm-up. Generated by nodescale${
    context === undefined
      ? '.'
      : ` ${escapeXml(context.nodescale)} on Node.js ${escapeXml(context.node)}, ${escapeXml(context.date.toISOString())}.`
  }</p>${context === undefined ? '' : `\n<p>Made with:</p>\n<pre class="wrap">${escapeXml(context.command)}</pre>`}
<h2>Knee</h2>
<pre class="wrap">${escapeXml(knee)}</pre>
<figure>${charts.throughput}</figure>
<figure>${charts.latency}</figure>
<figure>${charts.latencyVsThroughput}</figure>
<h2>Levels</h2>
<pre>${escapeXml(table)}</pre>
</body>
</html>
`;
}
