/**
 * Live terminal charts for `console watch`: one sparkline a measure over the last samples, redrawn in place.
 */
import type { RuntimeSample } from '../runtime/sampler.ts';
import { formatBytes, formatCount, formatMs } from '../units.ts';

const BARS = '▁▂▃▄▅▆▇█';

/** A sparkline of `values` scaled to their maximum (a flat zero line when all are zero). */
export function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(-width);
  const max = Math.max(...shown, 0);
  const line = shown
    .map((v) => (max <= 0 ? BARS[0] : BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1) + 0.5))]))
    .join('');
  return line.padEnd(width, ' ');
}

interface Measure {
  label: string;
  value: (s: RuntimeSample) => number;
  format: (v: number) => string;
}

const MEASURES: Measure[] = [
  { label: 'event-loop p99', value: (s) => s.eventLoop.delayP99Ms, format: formatMs },
  { label: 'loop utilisation', value: (s) => s.eventLoop.utilization * 100, format: (v) => `${v.toFixed(0)}%` },
  { label: 'cpu', value: (s) => s.cpu.percent, format: (v) => `${v.toFixed(0)}%` },
  { label: 'heap used', value: (s) => s.memory.heapUsed, format: (v) => formatBytes(Math.round(v)) },
  { label: 'requests/s', value: (s) => s.http.requestsPerSecond, format: (v) => formatCount(Math.round(v)) },
  { label: 'in flight', value: (s) => s.http.inFlight, format: (v) => String(v) },
];

/** Columns a chart line takes besides its sparkline: the label, the latest value, the window's maximum. */
const VALUE = 11; // the widest value: "1023.00 GiB"
const FRAME = 17 + 1 + 2 + VALUE + 2 + 4 + VALUE;

/** The sparkline width that fits a terminal of `columns` (a wrapped line would break the redraw in place). */
export function chartWidth(columns: number | undefined): number {
  return Math.max(8, Math.min(120, (columns ?? 80) - FRAME - 1));
}

/** The chart block for the samples so far: one line a measure, with the latest value and the window's maximum. */
export function renderCharts(samples: readonly RuntimeSample[], width = 48): string {
  return MEASURES.map((m) => {
    const values = samples.map(m.value);
    const latest = values.at(-1) ?? 0;
    const max = values.length === 0 ? 0 : Math.max(...values.slice(-width));
    return `${m.label.padEnd(17)} ${sparkline(values, width)}  ${m.format(latest).padStart(VALUE)}  max ${m.format(max)}`;
  }).join('\n');
}
