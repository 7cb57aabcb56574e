/**
 * Latency histograms: an HdrHistogram (hdr-histogram-js) at microsecond resolution, 3 significant digits, from 1 µs
 * up to the request timeout. Values are recorded in µs and reported in ms (fractional: 0.183 ms, never "0 ms").
 */
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

export interface LatencySummary {
  min: number;
  mean: number;
  stdev: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
}

/** The percentiles every report carries, with the key each is reported under. */
export const PERCENTILES = [
  ['p50', 50],
  ['p75', 75],
  ['p90', 90],
  ['p99', 99],
  ['p999', 99.9],
  ['p9999', 99.99],
] as const;

export function createLatencyHistogram(maxMicros: number): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: Math.max(2, Math.ceil(maxMicros)),
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

/** Records a latency, clamped into the histogram's range (a value past the timeout is recorded as the timeout). */
export function recordMicros(histogram: Histogram, micros: number): void {
  const max = histogram.highestTrackableValue;
  histogram.recordValue(micros < 1 ? 1 : micros > max ? max : Math.round(micros));
}

const ms = (micros: number): number => Math.round(micros) / 1000;

export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) {
    return { min: 0, mean: 0, stdev: 0, p50: 0, p75: 0, p90: 0, p99: 0, p999: 0, p9999: 0, max: 0 };
  }
  const summary = {
    min: ms(histogram.minNonZeroValue),
    mean: ms(histogram.mean),
    stdev: ms(histogram.stdDeviation),
    max: ms(histogram.maxValue),
  } as LatencySummary;
  // A percentile is reported as the top of its bucket (to 3 significant digits), which can pass the exact maximum
  // recorded: clamped, p99.99 of 10.095 ms never reads above a max of 10.092 ms.
  for (const [key, percentile] of PERCENTILES)
    summary[key] = ms(Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue));
  return summary;
}

/** A compact, portable form of a histogram, to move it between threads or store it with a result. */
export function encodeHistogram(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded);
}
