/**
 * Percentiles from histogram buckets, as Prometheus's histogram_quantile computes them: find the bucket the rank
 * falls in, interpolate linearly inside it. Buckets from several workers are added before, never their percentiles
 * averaged after.
 */

/** The requests of an interval: `counts` minus the `previous` counts of the same worker (all of them without one, or
 * when any went down: the worker's histogram was reset). */
export function subtractCounts(counts: readonly number[], previous: readonly number[] | undefined): number[] {
  if (previous === undefined || previous.length !== counts.length) return [...counts];
  const delta = counts.map((count, i) => count - previous[i]!);
  return delta.some((value) => value < 0) ? [...counts] : delta;
}

/**
 * The value under which fraction `q` of the requests fell, in ms; null with no requests. `bounds` are the buckets'
 * upper bounds in seconds, `counts` one per bucket and one more for +Inf (whose requests are reported at the last
 * bound: a histogram knows no more than that).
 */
export function quantileMs(q: number, bounds: readonly number[], counts: readonly number[]): number | null {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i]!;
    if (below + count >= rank && count > 0) {
      if (i >= bounds.length) return bounds.at(-1)! * 1000;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return (lower + ((upper - lower) * (rank - below)) / count) * 1000;
    }
    below += count;
  }
  return bounds.at(-1)! * 1000;
}

export function latencyPercentiles(bounds: readonly number[], counts: readonly number[]) {
  return { p50Ms: quantileMs(0.5, bounds, counts), p99Ms: quantileMs(0.99, bounds, counts) };
}
