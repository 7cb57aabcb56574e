/**
 * `bench` options: the one place they are validated and filled in.
 */
import { refuseUnknownOptions } from '../unknown-options.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { encodeRequest, parseTarget, type Target } from './request.ts';

export interface BenchOptions {
  /** The target, an http: URL. */
  url: string | URL;
  /** Connections kept open. Default 10. */
  connections?: number;
  /** Measured duration in ms. Default 10 000, unless `amount` is given. */
  durationMs?: number;
  /** Requests to complete, instead of a duration. */
  amount?: number;
  /** Requests in flight per connection. Default 1. */
  pipelining?: number;
  /** Worker threads sharing the connections, to use more than one core. Default 1 (the calling thread). */
  workers?: number;
  /** Time spent sending before measuring starts, ms. Default 0. */
  warmupMs?: number;
  /** Open model: requests per second over all connections, spread evenly. Default: closed model. */
  rate?: number;
  /** Default 'GET'. */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A request with no response after this long is an error, ms. Default 10 000. */
  timeoutMs?: number;
}

export interface ResolvedBenchOptions {
  readonly target: Target;
  readonly connections: number;
  readonly durationMs: number | null;
  readonly amount: number | null;
  readonly pipelining: number;
  readonly workers: number;
  readonly warmupMs: number;
  readonly rate: number | null;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | null;
  readonly timeoutMs: number;
  /** The encoded request every connection sends. */
  readonly request: Buffer;
}

export const BENCH_DEFAULTS = Object.freeze({
  connections: 10,
  durationMs: 10_000,
  pipelining: 1,
  workers: 1,
  warmupMs: 0,
  method: 'GET',
  timeoutMs: 10_000,
});

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(name, `an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}`, value);
  }
  return value;
}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw invalidOption(name, allowZero ? 'a number ≥ 0' : 'a number > 0', value);
  }
  return value;
}

/** Every option runBench knows (sweep and compare-servers pass theirs through): any other name is a typo. */
const BENCH_OPTION_NAMES = [
  'url',
  'connections',
  'durationMs',
  'amount',
  'pipelining',
  'workers',
  'warmupMs',
  'rate',
  'method',
  'headers',
  'body',
  'timeoutMs',
] as const satisfies readonly (keyof BenchOptions)[];

export function resolveBenchOptions(options: BenchOptions): ResolvedBenchOptions {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  refuseUnknownOptions(options, BENCH_OPTION_NAMES);
  const target = parseTarget(options.url);
  const connections = integer('connections', options.connections, BENCH_DEFAULTS.connections, 1, 100_000);
  const workers = integer('workers', options.workers, BENCH_DEFAULTS.workers, 1, 256);
  if (workers > connections) {
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `workers (${workers}) must not exceed connections (${connections}): each worker needs a connection`,
    );
  }
  const amount = options.amount === undefined ? null : integer('amount', options.amount, 0, 1);
  if (amount !== null && options.durationMs !== undefined) {
    throw new NodescaleError('NS_ERR_INVALID_OPTION', 'give either a duration or an amount, not both');
  }
  const durationMs = amount !== null ? null : positive('duration', options.durationMs, BENCH_DEFAULTS.durationMs);
  const rate = options.rate === undefined ? null : positive('rate', options.rate, 0);
  const method = (options.method ?? BENCH_DEFAULTS.method).toUpperCase();
  const headers = { ...(options.headers ?? {}) };
  const body =
    options.body === undefined ? null : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
  const shape = { method, headers, body };
  return Object.freeze({
    target,
    connections,
    durationMs,
    amount,
    pipelining: integer('pipelining', options.pipelining, BENCH_DEFAULTS.pipelining, 1, 1024),
    workers,
    warmupMs: positive('warmup', options.warmupMs, BENCH_DEFAULTS.warmupMs, true),
    rate,
    method,
    headers: Object.freeze(headers),
    body,
    timeoutMs: positive('timeout', options.timeoutMs, BENCH_DEFAULTS.timeoutMs),
    request: encodeRequest(target, shape),
  });
}
