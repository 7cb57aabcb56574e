/**
 * `runSweep()`: the talk's data-driven tuning. Runs the target at increasing concurrency (or, with a rate sweep, at
 * increasing open-model rates), one bench run per level, stops early when errors or p99 pass their limits, and finds
 * the knee.
 */
import { invalidOption, isNodescaleError, NodescaleError } from '../errors.ts';
import type { BenchResult } from './aggregate.ts';
import type { LatencySummary } from './histogram.ts';
import { findKnee, type Knee } from './knee.ts';
import { BENCH_DEFAULTS, type BenchOptions } from './options.ts';
import { runBench, type BenchProgress } from './run.ts';
import { evaluateThresholds, parseThreshold, type ThresholdOutcome } from './thresholds.ts';

export type SweepMode = 'concurrency' | 'rate';

export interface SweepOptions extends Omit<BenchOptions, 'rate' | 'amount' | 'durationMs'> {
  /** The levels: connections (concurrency sweep) or requests/s (rate sweep), ascending. */
  levels: number[];
  /** Default 'concurrency'. In a rate sweep, `connections` stays fixed (default 64). */
  mode?: SweepMode;
  /** Measured time per level, ms. Default 5000. */
  durationMs?: number;
  /** Warm-up per level, ms. Default 1000. */
  warmupMs?: number;
  /** Stop after a level whose errors ÷ (completed + errors) pass this ratio. Default 0.01. */
  maxErrorRatio?: number;
  /** Stop after a level whose p99 passes this, ms. Default: no limit. */
  maxP99Ms?: number;
  /**
   * A budget each level must meet, as `bench --assert` takes it (`['p99<50ms', 'errors<0.1%']`): the sweep stops at
   * the first level that fails one, and the answer is the highest level that met them all.
   */
  thresholds?: string[];
}

export interface SweepLevel {
  level: number;
  /** The N of the knee analysis: connections × pipelining, or throughput × mean latency in a rate sweep. */
  concurrency: number;
  throughput: number;
  latencyMs: LatencySummary;
  errors: BenchResult['errors'];
  errorRatio: number;
  statusCodes: Record<string, number>;
  notSentOnTime: number | null;
  cpuMicrosPerRequest: number;
  /** Each threshold judged at this level; empty without thresholds. */
  thresholds: ThresholdOutcome[];
}

export interface SweepResult {
  url: string;
  mode: SweepMode;
  durationMs: number;
  warmupMs: number;
  pipelining: number;
  /** Fixed connections of a rate sweep; null in a concurrency sweep. */
  connections: number | null;
  levels: SweepLevel[];
  knee: Knee;
  /** Why the sweep ended before its last level, or null. */
  stoppedEarly: string | null;
  /** With thresholds: the highest level that met every one (null: not even the first), and the first that did not. */
  budget: { thresholds: string[]; highestPassing: number | null; firstFailing: number | null } | null;
}

export interface SweepControl {
  onLevelStart?: (index: number, level: number, total: number) => void;
  onProgress?: (index: number, progress: BenchProgress) => void;
  onLevelDone?: (index: number, level: SweepLevel) => void;
  signal?: AbortSignal;
}

export const SWEEP_DEFAULTS = Object.freeze({
  durationMs: 5000,
  warmupMs: 1000,
  maxErrorRatio: 0.01,
  rateConnections: 64,
  from: 1,
  to: 256,
  factor: 2,
});

/** Levels from `from` to `to` (inclusive), multiplying by `factor`, rounded to whole numbers without repeats. */
export function geometricLevels(from: number, to: number, factor: number): number[] {
  if (!Number.isFinite(from) || from < 1) throw invalidOption('from', 'a number ≥ 1', from);
  if (!Number.isFinite(to) || to < from) throw invalidOption('to', `a number ≥ from (${from})`, to);
  if (!Number.isFinite(factor) || factor <= 1) throw invalidOption('factor', 'a number > 1', factor);
  const levels: number[] = [];
  for (let level = from; level <= to * (1 + 1e-9); level *= factor) {
    const rounded = Math.round(level);
    if (levels.at(-1) !== rounded) levels.push(rounded);
  }
  if (levels.at(-1) !== Math.round(to)) levels.push(Math.round(to));
  return levels;
}

function toLevel(level: number, mode: SweepMode, result: BenchResult, thresholds: ThresholdOutcome[]): SweepLevel {
  const { connect, tls, reset, timeout, parse } = result.errors;
  const attempted = result.requests.total + connect + tls + reset + timeout + parse;
  return {
    level,
    concurrency:
      mode === 'rate' ? (result.requests.perSecond * result.latencyMs.mean) / 1000 : level * result.pipelining,
    throughput: result.requests.perSecond,
    latencyMs: result.latencyMs,
    errors: result.errors,
    errorRatio: attempted > 0 ? result.errors.total / attempted : 0,
    statusCodes: result.statusCodes,
    notSentOnTime: result.notSentOnTime,
    cpuMicrosPerRequest: result.generator.cpuMicrosPerRequest,
    thresholds,
  };
}

function validateLevels(levels: unknown): number[] {
  if (!Array.isArray(levels) || levels.length === 0)
    throw invalidOption('levels', 'a non-empty list of numbers', levels);
  for (const level of levels)
    if (typeof level !== 'number' || !(level > 0)) throw invalidOption('levels', 'numbers > 0', levels);
  for (let i = 1; i < levels.length; i++)
    if (levels[i] <= levels[i - 1]) throw invalidOption('levels', 'strictly ascending', levels);
  return levels as number[];
}

export async function runSweep(options: SweepOptions, control: SweepControl = {}): Promise<SweepResult> {
  const mode = options.mode ?? 'concurrency';
  const levels = validateLevels(options.levels);
  if (mode === 'concurrency')
    for (const level of levels)
      if (!Number.isInteger(level)) throw invalidOption('levels', 'whole numbers of connections', levels);
  const durationMs = options.durationMs ?? SWEEP_DEFAULTS.durationMs;
  const warmupMs = options.warmupMs ?? SWEEP_DEFAULTS.warmupMs;
  const maxErrorRatio = options.maxErrorRatio ?? SWEEP_DEFAULTS.maxErrorRatio;
  if (!(maxErrorRatio >= 0 && maxErrorRatio <= 1))
    throw invalidOption('maxErrorRatio', 'a ratio from 0 to 1', maxErrorRatio);
  const { levels: _levels, mode: _mode, maxErrorRatio: _max, maxP99Ms, thresholds: raw, ...bench } = options;
  if (raw !== undefined && !Array.isArray(raw)) throw invalidOption('thresholds', "a list like ['p99<50ms']", raw);
  const thresholds = (raw ?? []).map(parseThreshold);
  let highestPassing: number | null = null;
  let firstFailing: number | null = null;
  const connections = mode === 'rate' ? (options.connections ?? SWEEP_DEFAULTS.rateConnections) : null;
  const done: SweepLevel[] = [];
  let stoppedEarly: string | null = null;
  for (const [index, level] of levels.entries()) {
    if (control.signal?.aborted) {
      stoppedEarly = 'interrupted';
      break;
    }
    control.onLevelStart?.(index, level, levels.length);
    const run: BenchOptions = { ...bench, durationMs, warmupMs };
    if (mode === 'rate') Object.assign(run, { rate: level, connections });
    else Object.assign(run, { connections: level, workers: Math.min(options.workers ?? 1, level) });
    let result: BenchResult;
    try {
      result = await runBench(run, {
        onProgress: (progress) => control.onProgress?.(index, progress),
        ...(control.signal ? { signal: control.signal } : {}),
      });
    } catch (error) {
      // A level that completes nothing ends the sweep; the first one failing means there is nothing to sweep.
      if (done.length === 0 || !isNodescaleError(error) || error.kind === 'usage') throw error;
      stoppedEarly = `level ${level} completed no request (${error.code}: ${error.message})`;
      break;
    }
    const measured = toLevel(level, mode, result, evaluateThresholds(result, thresholds));
    done.push(measured);
    control.onLevelDone?.(index, measured);
    if (control.signal?.aborted) {
      stoppedEarly = 'interrupted';
      break;
    }
    const failed = measured.thresholds.filter((outcome) => !outcome.passed);
    if (failed.length > 0) {
      firstFailing = level;
      stoppedEarly = `level ${level} failed ${failed.map((outcome) => `${outcome.threshold} (${outcome.detail})`).join(', ')}`;
      break;
    }
    if (thresholds.length > 0) highestPassing = level;
    if (measured.errorRatio > maxErrorRatio) {
      stoppedEarly = `errors reached ${(measured.errorRatio * 100).toFixed(2)}% at level ${level} (limit ${(maxErrorRatio * 100).toFixed(2)}%)`;
      break;
    }
    if (maxP99Ms !== undefined && measured.latencyMs.p99 > maxP99Ms) {
      stoppedEarly = `p99 reached ${measured.latencyMs.p99} ms at level ${level} (limit ${maxP99Ms} ms)`;
      break;
    }
  }
  if (done.length === 0)
    throw new NodescaleError('NS_ERR_NO_RESPONSES', 'the sweep was interrupted before its first level completed');
  return {
    url: String(options.url),
    mode,
    durationMs,
    warmupMs,
    pipelining: options.pipelining ?? BENCH_DEFAULTS.pipelining,
    connections,
    levels: done,
    knee: findKnee(
      done.map((l) => ({ concurrency: l.concurrency, throughput: l.throughput, latencyMs: l.latencyMs.mean })),
    ),
    stoppedEarly,
    budget:
      thresholds.length === 0
        ? null
        : { thresholds: thresholds.map((threshold) => threshold.source), highestPassing, firstFailing },
  };
}
