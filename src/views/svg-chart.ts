/**
 * A small line-chart renderer to standalone SVG: no browser, no DOM, no dependency. Linear or log axes, several
 * series, labelled markers. Enough for the sweep's three charts; deliberately nothing more.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  color: string;
  dashed?: boolean;
  /** Draw a dot at each point. Default true. */
  dots?: boolean;
  /** A small label beside each point (what it was measured at), in the order of `points`. */
  labels?: readonly string[];
}

export interface Marker {
  x: number;
  /** Omitted: a vertical line across the plot. */
  y?: number;
  label: string;
  color?: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  markers?: readonly Marker[];
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
}

const MARGIN = { top: 64, right: 24, bottom: 56, left: 76 };

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

/** Short tick labels: 1.5k, 2M, 0.25. */
export function tickLabel(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e3) return `${+(value / 1e3).toPrecision(3)}k`;
  return String(+value.toPrecision(3));
}

function linearTicks(min: number, max: number, count = 6): number[] {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => span / s <= count) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of max / min > 1e3 ? [1] : [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= min * 0.999 && t <= max * 1.001) ticks.push(t);
    }
  }
  return ticks;
}

interface Axis {
  scale: (v: number) => number;
  ticks: number[];
}

function axis(values: number[], log: boolean, from: number, to: number, zeroBased: boolean): Axis {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (log) {
    min = Math.max(min, 1e-9);
    max = Math.max(max, min * 1.0001);
    const lo = Math.log10(min) - 0.05 * (Math.log10(max) - Math.log10(min) || 1);
    const hi = Math.log10(max) + 0.05 * (Math.log10(max) - Math.log10(min) || 1);
    return {
      scale: (v) => from + ((Math.log10(Math.max(v, 1e-9)) - lo) / (hi - lo)) * (to - from),
      ticks: logTicks(10 ** lo, 10 ** hi),
    };
  }
  if (zeroBased) min = Math.min(0, min);
  if (max === min) max = min + 1;
  const ticks = linearTicks(min, max);
  const lo = Math.min(min, ticks[0]!);
  const hi = Math.max(max, ticks.at(-1)!);
  return { scale: (v) => from + ((v - lo) / (hi - lo)) * (to - from), ticks };
}

export function renderChart(spec: ChartSpec): string {
  const width = spec.width ?? 720;
  const height = spec.height ?? 420;
  const plot = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
  const all = spec.series.flatMap((s) => s.points);
  const xs = [...all.map((p) => p[0]), ...(spec.markers ?? []).map((m) => m.x)];
  const ys = [...all.map((p) => p[1]), ...(spec.markers ?? []).flatMap((m) => (m.y === undefined ? [] : [m.y]))];
  if (xs.length === 0) xs.push(0, 1);
  if (ys.length === 0) ys.push(0, 1);
  const x = axis(xs, spec.logX ?? false, plot.left, plot.right, false);
  const y = axis(ys, spec.logY ?? false, plot.bottom, plot.top, true);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(spec.title)}</text>`,
  );
  for (const t of x.ticks) {
    const px = x.scale(t).toFixed(1);
    out.push(`<line x1="${px}" x2="${px}" y1="${plot.top}" y2="${plot.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${px}" y="${plot.bottom + 18}" text-anchor="middle" fill="#444">${tickLabel(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = y.scale(t).toFixed(1);
    out.push(`<line x1="${plot.left}" x2="${plot.right}" y1="${py}" y2="${py}" stroke="#eee"/>`);
    out.push(
      `<text x="${plot.left - 8}" y="${py}" text-anchor="end" dominant-baseline="middle" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}" fill="none" stroke="#999"/>`,
  );
  out.push(
    `<text x="${(plot.left + plot.right) / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(18 ${(plot.top + plot.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
  );
  for (const series of spec.series) {
    if (series.points.length === 0) continue;
    const path = series.points
      .map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${x.scale(px).toFixed(1)},${y.scale(py).toFixed(1)}`)
      .join(' ');
    out.push(
      `<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    if (series.dots ?? true) {
      for (const [px, py] of series.points)
        out.push(
          `<circle cx="${x.scale(px).toFixed(1)}" cy="${y.scale(py).toFixed(1)}" r="3" fill="${series.color}"/>`,
        );
    }
    series.labels?.forEach((label, i) => {
      const point = series.points[i];
      if (point === undefined) return;
      out.push(
        `<text x="${(x.scale(point[0]) + 5).toFixed(1)}" y="${(y.scale(point[1]) - 5).toFixed(1)}" font-size="10" fill="${series.color}">${escapeXml(label)}</text>`,
      );
    });
  }
  for (const marker of spec.markers ?? []) {
    const color = marker.color ?? '#d62728';
    const px = x.scale(marker.x).toFixed(1);
    if (marker.y === undefined) {
      out.push(
        `<line x1="${px}" x2="${px}" y1="${plot.top}" y2="${plot.bottom}" stroke="${color}" stroke-dasharray="3 3"/>`,
      );
      out.push(
        `<text x="${px}" y="${plot.top - 6}" text-anchor="middle" fill="${color}">${escapeXml(marker.label)}</text>`,
      );
    } else {
      const py = y.scale(marker.y).toFixed(1);
      out.push(`<circle cx="${px}" cy="${py}" r="7" fill="none" stroke="${color}" stroke-width="2"/>`);
      out.push(
        `<text x="${px}" y="${Number(py) - 12}" text-anchor="middle" fill="${color}" font-weight="600">${escapeXml(marker.label)}</text>`,
      );
    }
  }
  // Legend: one row under the title, outside the plot, so it never hides data or markers.
  let lx = plot.left;
  for (const series of spec.series) {
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="42" y2="42" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 30}" y="42" dominant-baseline="middle">${escapeXml(series.name)}</text>`,
    );
    lx += 46 + series.name.length * 7;
  }
  out.push('</svg>');
  return out.join('\n');
}
