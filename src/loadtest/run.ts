/**
 * `runBench()`: runs a load test and returns its result. One generator runs on the calling thread, or, with
 * `workers > 1`, one per worker thread, each with its share of the connections (and of the rate and amount).
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { NodescaleError } from '../errors.ts';
import { sibling } from '../module-file.ts';
import { aggregate, type BenchResult } from './aggregate.ts';
import {
  LoadGenerator,
  type ErrorCounts,
  type GeneratorCounters,
  type GeneratorOutcome,
  type GeneratorPlan,
} from './generator.ts';
import { createLatencyHistogram, decodeHistogram } from './histogram.ts';
import { resolveBenchOptions, type BenchOptions, type ResolvedBenchOptions } from './options.ts';

export interface BenchProgress {
  phase: 'warmup' | 'measure';
  /** Requests completed in the measured phase so far. */
  completed: number;
  /** ms since measuring started (0 during the warm-up). */
  elapsedMs: number;
}

export interface BenchControl {
  /** Called about four times a second while the run lasts. */
  onProgress?: (progress: BenchProgress) => void;
  /** Aborting ends the run early; the result covers what was measured until then. */
  signal?: AbortSignal;
}

export type WorkerMessage =
  | { type: 'measuring' }
  | { type: 'progress'; completed: number }
  | {
      type: 'done';
      counters: GeneratorCounters;
      elapsedMs: number;
      abortedBecause: keyof ErrorCounts | null;
      tlsError: string | null;
      histogram: string;
      non2xxHistogram: string;
      kindHistograms: string[];
    };

/** Shares `total` out over `parts` as evenly as integers allow. */
function share(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}

export function planGenerators(options: ResolvedBenchOptions): GeneratorPlan[] {
  const plans: GeneratorPlan[] = [];
  for (let i = 0; i < options.workers; i++) {
    const connections = share(options.connections, options.workers, i);
    plans.push({
      host: options.target.host,
      port: options.target.port,
      requests: options.requests,
      thread: i,
      threads: options.workers,
      tls: options.tls,
      connections,
      pipelining: options.pipelining,
      durationMs: options.durationMs,
      amount: options.amount === null ? null : share(options.amount, options.workers, i),
      warmupMs: options.warmupMs,
      rate: options.rate === null ? null : (options.rate * connections) / options.connections,
      timeoutMs: options.timeoutMs,
    });
  }
  // A worker whose share of the amount is zero has nothing to do.
  return plans.filter((plan) => plan.amount !== 0);
}

interface Running {
  outcome: Promise<GeneratorOutcome>;
  completed: () => number;
  stop: () => void;
}

function runHere(plan: GeneratorPlan, onMeasuring: () => void): Running {
  const generator = new LoadGenerator(plan);
  return {
    outcome: generator.run(onMeasuring),
    completed: () => generator.counters.completed,
    stop: () => generator.stop(),
  };
}

function runInWorker(plan: GeneratorPlan, onMeasuring: () => void): Running {
  const worker = new Worker(sibling('./worker', import.meta.url), { workerData: plan });
  let completed = 0;
  const outcome = new Promise<GeneratorOutcome>((resolve, reject) => {
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'measuring') onMeasuring();
      else if (message.type === 'progress') completed = message.completed;
      else {
        const { histogram, non2xxHistogram, kindHistograms, ...rest } = message;
        resolve({
          ...rest,
          histogram: decodeHistogram(histogram),
          non2xxHistogram: decodeHistogram(non2xxHistogram),
          kindHistograms: kindHistograms.map(decodeHistogram),
        });
      }
    });
    worker.on('error', (error) =>
      reject(new NodescaleError('NS_ERR_WORKER', `a load-generator worker failed: ${error.message}`, { cause: error })),
    );
    worker.on('exit', (code) => {
      if (code !== 0) reject(new NodescaleError('NS_ERR_WORKER', `a load-generator worker exited with code ${code}`));
    });
  });
  return { outcome, completed: () => completed, stop: () => worker.postMessage({ type: 'stop' }) };
}

const FAILURE_CODES = {
  connect: 'NS_ERR_TARGET_UNREACHABLE',
  parse: 'NS_ERR_TARGET_NOT_HTTP',
  timeout: 'NS_ERR_TARGET_TIMEOUT',
  reset: 'NS_ERR_NO_RESPONSES',
  tls: 'NS_ERR_TARGET_TLS',
} as const;

function noResponses(
  result: BenchResult,
  abortedBecause: keyof ErrorCounts | null,
  tlsError: string | null,
): NodescaleError {
  const { errors } = result;
  const kinds = (['connect', 'tls', 'parse', 'timeout', 'reset'] as const).filter((kind) => errors[kind] > 0);
  const cause = abortedBecause ?? (kinds.length === 1 ? kinds[0]! : null);
  const counts = kinds.map((kind) => `${kind} ${errors[kind]}`).join(', ') || 'none';
  const what = {
    connect: `could not connect to ${result.url}; is the server running and listening there?`,
    parse: `${result.url} accepted connections but did not answer with HTTP/1.1`,
    timeout: `${result.url} accepted connections but sent no response in time (raise --timeout if it is just slow)`,
    reset: `${result.url} closed every connection before answering`,
    tls: `the TLS handshake with ${result.url} failed: ${tlsError ?? 'no reason given'}${tlsHint(tlsError)}`,
  };
  const message =
    cause === null ? `no request to ${result.url} completed (errors: ${counts})` : `${what[cause]} (errors: ${counts})`;
  return new NodescaleError(cause === null ? 'NS_ERR_NO_RESPONSES' : FAILURE_CODES[cause], message);
}

/** What to give when the handshake failed on the server's certificate. */
function tlsHint(reason: string | null): string {
  if (reason === null) return '';
  if (/SELF_SIGNED|UNABLE_TO_(GET|VERIFY)_ISSUER|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED|CERT_HAS_EXPIRED/.test(reason))
    return '; give the CA that signed it (--ca FILE), or skip verification (--insecure)';
  if (/ALTNAME/.test(reason)) return '; the certificate names another host: --servername NAME sets the name checked';
  return '';
}

/** A name that does not resolve fails at once, saying so, rather than as connection errors for the whole run. */
async function checkResolves(host: string): Promise<void> {
  if (net.isIP(host) !== 0) return;
  try {
    await lookup(host);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_TARGET_UNREACHABLE',
      `cannot resolve ${host} (DNS: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
}

/** Runs a load test. Rejects when the options are invalid or when not a single request completed. */
export async function runBench(options: BenchOptions, control: BenchControl = {}): Promise<BenchResult> {
  const resolved = resolveBenchOptions(options);
  await checkResolves(resolved.target.host);
  const plans = planGenerators(resolved);
  let measuring = 0;
  let measureStartedAt = 0;
  let wallStart = Date.now();
  let cpuStart: NodeJS.CpuUsage | null = null;
  const onMeasuring = () => {
    // CPU is counted over the whole process (every thread) from the moment the first generator measures.
    if (measuring++ === 0) {
      cpuStart = process.cpuUsage();
      measureStartedAt = performance.now();
      wallStart = Date.now();
    }
  };
  const running = plans.map((plan) =>
    resolved.workers === 1 ? runHere(plan, onMeasuring) : runInWorker(plan, onMeasuring),
  );
  const stopAll = () => running.forEach((run) => run.stop());
  control.signal?.addEventListener('abort', stopAll, { once: true });
  const ticker = control.onProgress
    ? setInterval(() => {
        const completed = running.reduce((sum, run) => sum + run.completed(), 0);
        control.onProgress!({
          phase: measuring > 0 ? 'measure' : 'warmup',
          completed,
          elapsedMs: measuring > 0 ? performance.now() - measureStartedAt : 0,
        });
      }, 250)
    : null;
  let outcomes: GeneratorOutcome[];
  try {
    outcomes = await Promise.all(running.map((run) => run.outcome));
  } catch (error) {
    stopAll();
    throw error;
  } finally {
    if (ticker !== null) clearInterval(ticker);
    control.signal?.removeEventListener('abort', stopAll);
  }
  const cpu = process.cpuUsage(cpuStart ?? undefined);
  const histogram = createLatencyHistogram(resolved.timeoutMs * 1000);
  const ok = createLatencyHistogram(resolved.timeoutMs * 1000);
  for (const outcome of outcomes) {
    histogram.add(outcome.histogram);
    ok.add(outcome.histogram);
    ok.subtract(outcome.non2xxHistogram);
  }
  const kindHistograms = resolved.requests.names.map((_, kind) => {
    const merged = createLatencyHistogram(resolved.timeoutMs * 1000);
    for (const outcome of outcomes) merged.add(outcome.kindHistograms[kind]!);
    return merged;
  });
  const result = aggregate(resolved, outcomes, { histogram, ok, kindHistograms }, cpu, {
    startedAt: wallStart,
    endedAt: Date.now(),
  });
  if (result.requests.total === 0 && !control.signal?.aborted) {
    throw noResponses(
      result,
      outcomes.find((outcome) => outcome.abortedBecause !== null)?.abortedBecause ?? null,
      outcomes.find((outcome) => outcome.tlsError !== null)?.tlsError ?? null,
    );
  }
  return result;
}
