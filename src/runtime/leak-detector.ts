/**
 * Leak detection on the heap's baseline: the heap used right after each major GC (what survives collection), not raw
 * samples, which rise and fall with every allocation burst. Over a sliding window it fits a line to the baseline;
 * it fires when the baseline grows steadily (slope over `minGrowthBytesPerMinute` with R² ≥ 0.6) and, at that growth,
 * the heap limit would be reached within `horizonMs`. Then: an event, a metric, and (when configured) a heap snapshot,
 * at most one per cooldown.
 */
export interface LeakReport {
  /** Growth of the post-GC baseline, bytes per minute. */
  growthBytesPerMinute: number;
  /** R² of the linear fit: how steady the growth is. */
  r2: number;
  baselineBytes: number;
  heapLimitBytes: number;
  /** At this growth, ms until the heap limit. */
  msToLimit: number;
  samples: number;
  snapshot: string | null;
  snapshotSkipped: string | null;
}

export interface LeakCriteria {
  windowMs: number;
  minSamples: number;
  minGrowthBytesPerMinute: number;
  horizonMs: number;
}

interface Point {
  time: number;
  bytes: number;
}

export class LeakDetector {
  readonly #criteria: LeakCriteria;
  readonly #heapLimit: number;
  #points: Point[] = [];
  #suspected = false;

  constructor(criteria: LeakCriteria, heapLimit: number) {
    this.#criteria = criteria;
    this.#heapLimit = heapLimit;
  }

  get suspected(): boolean {
    return this.#suspected;
  }

  /** Feeds one post-major-GC heap size. Returns a report when the baseline looks like a leak. */
  observe(bytes: number, time: number): Omit<LeakReport, 'snapshot' | 'snapshotSkipped'> | null {
    const c = this.#criteria;
    this.#points.push({ time, bytes });
    this.#points = this.#points.filter((p) => p.time >= time - c.windowMs);
    const n = this.#points.length;
    if (n < c.minSamples) return null;
    const t0 = this.#points[0]!.time;
    const xs = this.#points.map((p) => (p.time - t0) / 60_000);
    const ys = this.#points.map((p) => p.bytes);
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    let sxx = 0;
    let sxy = 0;
    let syy = 0;
    for (let i = 0; i < n; i++) {
      sxx += (xs[i]! - mx) ** 2;
      sxy += (xs[i]! - mx) * (ys[i]! - my);
      syy += (ys[i]! - my) ** 2;
    }
    if (sxx === 0) return null;
    const slope = sxy / sxx;
    const r2 = syy === 0 ? 0 : (sxy * sxy) / (sxx * syy);
    const baseline = ys[n - 1]!;
    const msToLimit = slope > 0 ? ((this.#heapLimit - baseline) / slope) * 60_000 : Infinity;
    const leaking = slope >= c.minGrowthBytesPerMinute && r2 >= 0.6 && msToLimit <= c.horizonMs;
    this.#suspected = this.#suspected || leaking;
    return leaking
      ? {
          growthBytesPerMinute: slope,
          r2,
          baselineBytes: baseline,
          heapLimitBytes: this.#heapLimit,
          msToLimit,
          samples: n,
        }
      : null;
  }
}
