/**
 * Where a service should be run: the knee of its throughput-vs-concurrency curve, found two ways.
 *
 * - Kleinrock's power, throughput ÷ mean latency: its maximum is the optimal operating point, the most work for the
 *   least waiting (L. Kleinrock, "Power and deterministic rules of thumb for probabilistic problems", 1979).
 * - The Universal Scalability Law (N. Gunther): X(N) = λN / (1 + σ(N−1) + κN(N−1)), with σ the cost of contention
 *   (serialisation) and κ of coherency (crosstalk). Fitted by least squares on throughput, it predicts the peak
 *   concurrency N* = √((1−σ)/κ) and says how well it fits (R²).
 */

export interface KneePoint {
  /** Concurrency N: connections × pipelining (closed model), or throughput × mean latency (open model, Little's law). */
  concurrency: number;
  /** Completed requests per second. */
  throughput: number;
  /** Mean latency, ms. */
  latencyMs: number;
}

export interface PowerKnee {
  /** Index of the level with the highest power. */
  index: number;
  concurrency: number;
  throughput: number;
  latencyMs: number;
  /** throughput (req/s) ÷ mean latency (s). */
  power: number;
}

export interface UslFit {
  /** Throughput of one unit of concurrency with no contention, req/s. */
  lambda: number;
  sigma: number;
  kappa: number;
  /** √((1−σ)/κ); null when κ is 0 (throughput never falls, the curve has no peak). */
  peakConcurrency: number | null;
  /** X(N*), or null with no peak. */
  peakThroughput: number | null;
  r2: number;
}

export interface Knee {
  power: PowerKnee | null;
  usl: UslFit | null;
  /** Why the USL was not fitted, when it was not. */
  uslSkipped: string | null;
}

export function powerKnee(points: readonly KneePoint[]): PowerKnee | null {
  let best: PowerKnee | null = null;
  points.forEach((point, index) => {
    if (point.latencyMs <= 0 || point.throughput <= 0) return;
    const power = point.throughput / (point.latencyMs / 1000);
    if (best === null || power > best.power) best = { index, ...point, power };
  });
  return best;
}

export function uslThroughput(fit: Pick<UslFit, 'lambda' | 'sigma' | 'kappa'>, n: number): number {
  return (fit.lambda * n) / (1 + fit.sigma * (n - 1) + fit.kappa * n * (n - 1));
}

/** Least squares for y = a·u + b·v (no intercept), a and b clamped at 0. */
function twoRegressors(u: number[], v: number[], y: number[]): [number, number] {
  let suu = 0;
  let svv = 0;
  let suv = 0;
  let suy = 0;
  let svy = 0;
  for (let i = 0; i < y.length; i++) {
    suu += u[i]! * u[i]!;
    svv += v[i]! * v[i]!;
    suv += u[i]! * v[i]!;
    suy += u[i]! * y[i]!;
    svy += v[i]! * y[i]!;
  }
  const det = suu * svv - suv * suv;
  let a = det !== 0 ? (suy * svv - svy * suv) / det : 0;
  let b = det !== 0 ? (svy * suu - suy * suv) / det : 0;
  if (a < 0 || b < 0) {
    // The unconstrained optimum is outside the feasible region: the best fit has one of them at 0.
    const onlyA = suu > 0 ? Math.max(0, suy / suu) : 0;
    const onlyB = svv > 0 ? Math.max(0, svy / svv) : 0;
    const sse = (ca: number, cb: number) => y.reduce((sum, yi, i) => sum + (yi - ca * u[i]! - cb * v[i]!) ** 2, 0);
    [a, b] = sse(onlyA, 0) <= sse(0, onlyB) ? [onlyA, 0] : [0, onlyB];
  }
  return [a, b];
}

/** Nelder–Mead minimisation of `f` from `start`. Small and dependable for three parameters. */
function nelderMead(f: (p: number[]) => number, start: number[], iterations = 4000): number[] {
  const dim = start.length;
  let simplex = [
    start,
    ...start.map((_, i) => start.map((v, j) => (i === j ? v + (Math.abs(v) > 1e-3 ? v * 0.1 : 0.1) : v))),
  ];
  let values = simplex.map(f);
  for (let iter = 0; iter < iterations; iter++) {
    const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
    simplex = order.map((i) => simplex[i]!);
    values = order.map((i) => values[i]!);
    if (Math.abs(values[dim]! - values[0]!) <= 1e-12 * (Math.abs(values[0]!) + 1e-30)) break;
    const centroid = start.map((_, j) => simplex.slice(0, dim).reduce((sum, p) => sum + p[j]!, 0) / dim);
    const along = (t: number) => centroid.map((c, j) => c + t * (simplex[dim]![j]! - c));
    const reflected = along(-1);
    const fr = f(reflected);
    if (fr < values[0]!) {
      const expanded = along(-2);
      const fe = f(expanded);
      [simplex[dim], values[dim]] = fe < fr ? [expanded, fe] : [reflected, fr];
    } else if (fr < values[dim - 1]!) {
      [simplex[dim], values[dim]] = [reflected, fr];
    } else {
      const contracted = along(fr < values[dim]! ? -0.5 : 0.5);
      const fc = f(contracted);
      if (fc < Math.min(fr, values[dim]!)) {
        [simplex[dim], values[dim]] = [contracted, fc];
      } else {
        simplex = simplex.map((p) => p.map((v, j) => simplex[0]![j]! + 0.5 * (v - simplex[0]![j]!)));
        values = simplex.map(f);
      }
    }
  }
  return simplex[values.indexOf(Math.min(...values))]!;
}

const logistic = (t: number) => 1 / (1 + Math.exp(-t));
const logit = (p: number) => Math.log(p / (1 - p));

/** Fits the USL to at least three points with distinct concurrency. Returns null when it cannot be fitted. */
export function fitUsl(points: readonly KneePoint[]): UslFit | null {
  const usable = points.filter((p) => p.concurrency > 0 && p.throughput > 0);
  if (new Set(usable.map((p) => p.concurrency)).size < 3) return null;
  const n = usable.map((p) => p.concurrency);
  const x = usable.map((p) => p.throughput);
  // Start from the linearised form with λ from the lowest concurrency: λN/X − 1 = σ(N−1) + κN(N−1).
  const lowest = n.indexOf(Math.min(...n));
  const lambda0 = x[lowest]! / n[lowest]!;
  const [sigma0, kappa0] = twoRegressors(
    n.map((ni) => ni - 1),
    n.map((ni) => ni * (ni - 1)),
    n.map((ni, i) => (lambda0 * ni) / x[i]! - 1),
  );
  // Search in an unconstrained space: λ = e^a, σ = logistic(b) ∈ (0, 1), κ = e^c > 0.
  const decode = ([a, b, c]: number[]) => ({ lambda: Math.exp(a!), sigma: logistic(b!), kappa: Math.exp(c!) });
  const scale = Math.max(...x);
  const sse = (params: number[]) => {
    const fit = decode(params);
    return n.reduce((sum, ni, i) => sum + ((uslThroughput(fit, ni) - x[i]!) / scale) ** 2, 0);
  };
  const start = [Math.log(lambda0), logit(Math.min(Math.max(sigma0, 1e-6), 0.999)), Math.log(Math.max(kappa0, 1e-9))];
  const best = decode(nelderMead(sse, start));
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const sst = x.reduce((sum, xi) => sum + (xi - mean) ** 2, 0);
  const residual = n.reduce((sum, ni, i) => sum + (uslThroughput(best, ni) - x[i]!) ** 2, 0);
  // κ this small means no retrograde region within any concurrency a test could reach.
  const kappa = best.kappa < 1e-9 ? 0 : best.kappa;
  const sigma = best.sigma < 1e-6 ? 0 : best.sigma;
  const fit = { lambda: best.lambda, sigma, kappa };
  const peakConcurrency = kappa > 0 ? Math.sqrt((1 - sigma) / kappa) : null;
  return {
    ...fit,
    peakConcurrency,
    peakThroughput: peakConcurrency === null ? null : uslThroughput(fit, peakConcurrency),
    r2: sst > 0 ? 1 - residual / sst : 1,
  };
}

export function findKnee(points: readonly KneePoint[]): Knee {
  const usl = fitUsl(points);
  return {
    power: powerKnee(points),
    usl,
    uslSkipped:
      usl === null ? 'the USL needs at least three levels with distinct concurrency that completed requests' : null,
  };
}
