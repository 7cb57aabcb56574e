/**
 * Views of a compare-servers result: the talk's table, CSV, and a self-contained HTML page with a bar chart.
 */
import { escapeXml } from '../views/svg-chart.ts';
import { renderColumns } from '../views/columns.ts';
import { formatCount, formatMs } from '../units.ts';
import type { CompareResult } from './servers.ts';

const ratio = (value: number | null) => (value === null ? '—' : `${value.toFixed(2)}×`);

export function formatCompareTable(result: CompareResult): string {
  const rows = [['server', 'req/s', 'vs tcp', 'mean', 'p99', 'latency vs tcp', 'errors']];
  for (const f of result.servers) {
    rows.push([
      f.server,
      formatCount(Math.round(f.throughput)),
      ratio(f.throughputRatio),
      formatMs(f.latencyMeanMs),
      formatMs(f.latencyP99Ms),
      ratio(f.latencyRatio),
      String(f.errors),
    ]);
  }
  return renderColumns(rows);
}

export function compareCsv(result: CompareResult): string {
  const lines = ['server,throughput,throughputRatio,latencyMeanMs,latencyP99Ms,latencyRatio,errors'];
  for (const f of result.servers) {
    lines.push(
      [
        f.server,
        f.throughput,
        f.throughputRatio ?? '',
        f.latencyMeanMs,
        f.latencyP99Ms,
        f.latencyRatio ?? '',
        f.errors,
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Horizontal bars of throughput, one per server. */
export function compareSvg(result: CompareResult): string {
  const width = 640;
  const bar = 34;
  const left = 90;
  const height = 60 + result.servers.length * (bar + 12);
  const max = Math.max(...result.servers.map((f) => f.throughput), 1);
  const labels = result.servers.map(
    (f) =>
      `${formatCount(Math.round(f.throughput))} req/s${f.throughputRatio === null ? '' : ` (${ratio(f.throughputRatio)})`}`,
  );
  // Room for the longest label after the longest bar: 13 px text is at most ~8 px a character.
  const labelRoom = 12 + 8 * Math.max(...labels.map((l) => l.length));
  const rows = result.servers.map((f, i) => {
    const y = 44 + i * (bar + 12);
    const w = ((width - left - labelRoom) * f.throughput) / max;
    return (
      `<text x="${left - 8}" y="${y + bar / 2}" text-anchor="end" dominant-baseline="middle">${escapeXml(f.server)}</text>` +
      `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="#1f77b4"/>` +
      `<text x="${left + w + 6}" y="${y + bar / 2}" dominant-baseline="middle">${escapeXml(labels[i]!)}</text>`
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">
<rect width="${width}" height="${height}" fill="#fff"/>
<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">Hello World throughput, ${result.connections} connections</text>
${rows.join('\n')}
</svg>`;
}

export function compareHtml(result: CompareResult): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nodescale compare-servers</title>
<style>body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 700px; } pre { background: #f6f6f6; padding: 1rem; }</style>
</head>
<body>
<h1>Plain TCP vs plain http vs frameworks</h1>
<p>${result.connections} connections, ${(result.durationMs / 1000).toFixed(1)} s per run, ${result.rounds} alternating rounds; medians over rounds.</p>
${compareSvg(result)}
<pre>${escapeXml(formatCompareTable(result))}</pre>
</body>
</html>
`;
}
