/**
 * `bench` options: the one place they are validated and filled in.
 */
import { refuseUnknownOptions } from '../unknown-options.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { checkRequestSpec, REQUEST_FILE_LIMITS, type RequestSpec } from './request-file.ts';
import { planRequestSet, type RequestSetPlan } from './request-set.ts';
import { parseTarget, pathOf, type DataRow, type RequestShape, type Target } from './request.ts';

export interface BenchOptions {
  /** The target, an http: or https: URL; with `requests`, their origin (and the path of those that give none). */
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
  /**
   * Many requests instead of one: sent in order, round robin, or at random in proportion to their weights when any
   * has one. `headers` apply to each (its own win); `method` and `body` are given per request.
   */
  requests?: RequestSpec[];
  /** Rows whose fields fill `{{field}}` placeholders in paths, headers and bodies, one row per request in turn. */
  data?: DataRow[];
  /** Seed of the weighted random order. Default: random, and reported in the result to repeat the run. */
  seed?: number;
  /** https: do not verify the server's certificate. Default false. */
  insecure?: boolean;
  /** https: the CA certificate(s) to trust instead of Node's bundled ones, PEM. */
  ca?: string | Buffer;
  /** https: the name sent in SNI and checked against the certificate. Default: the URL's host. */
  servername?: string;
}

/** How the connections of an https: target speak TLS: plain data, so it crosses to worker threads. */
export interface TlsPlan {
  rejectUnauthorized: boolean;
  ca: string | null;
  servername: string | null;
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
  /** What the connections send. */
  readonly requests: RequestSetPlan;
  readonly seed: number;
  /** null for an http: target. */
  readonly tls: TlsPlan | null;
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
  'requests',
  'data',
  'seed',
  'insecure',
  'ca',
  'servername',
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
  const seed =
    options.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : integer('seed', options.seed, 0, 0, 2 ** 32 - 1);
  const data = options.data === undefined ? null : checkData(options.data);
  const kinds = options.requests === undefined ? null : requestShapes(target, options, headers);
  const shapes: RequestShape[] = kinds?.map(({ shape }) => shape) ?? [
    {
      method,
      path: pathOf(target.url),
      headers,
      // A string body may hold placeholders; a Buffer (--body-file) is sent as read.
      body: options.body === undefined ? null : options.body,
    },
  ];
  const requests = planRequestSet(
    target.url,
    shapes,
    data,
    kinds?.map(({ name }) => name) ?? [null],
    kinds?.map(({ weight }) => weight) ?? [null],
    seed,
  );
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
    requests,
    seed,
    tls: resolveTls(target, options),
  });
}

function resolveTls(target: Target, options: BenchOptions): TlsPlan | null {
  const given = (['insecure', 'ca', 'servername'] as const).filter((name) => options[name] !== undefined);
  if (!target.tls) {
    if (given.length > 0) throw invalidOption(given[0]!, 'given with an https: URL only', target.url.protocol);
    return null;
  }
  if (options.insecure !== undefined && typeof options.insecure !== 'boolean')
    throw invalidOption('insecure', 'a boolean', options.insecure);
  if (options.ca !== undefined && typeof options.ca !== 'string' && !Buffer.isBuffer(options.ca))
    throw invalidOption('ca', 'PEM text (a string or Buffer)', typeof options.ca);
  if (options.servername !== undefined && (typeof options.servername !== 'string' || options.servername === ''))
    throw invalidOption('servername', 'a host name', options.servername);
  return {
    rejectUnauthorized: options.insecure !== true,
    ca: options.ca === undefined ? null : options.ca.toString(),
    servername: options.servername ?? null,
  };
}

function checkData(data: DataRow[]): DataRow[] {
  if (!Array.isArray(data) || data.length === 0) throw invalidOption('data', 'a non-empty list of objects', data);
  if (data.length > REQUEST_FILE_LIMITS.rows)
    throw invalidOption('data', `at most ${REQUEST_FILE_LIMITS.rows} rows`, data.length);
  data.forEach((row, i) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new NodescaleError('NS_ERR_DATA_FILE', `data row ${i + 1} must be an object`);
  });
  return data;
}

interface Kind {
  shape: RequestShape;
  name: string | null;
  weight: number | null;
}

/** The shapes of `options.requests`, each checked: a problem is NS_ERR_REQUESTS_FILE, naming the entry. */
function requestShapes(target: Target, options: BenchOptions, headers: Record<string, string>): Kind[] {
  for (const name of ['method', 'body'] as const)
    if (options[name] !== undefined)
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `${name} is given per request with requests (a requests file), not for all of them`,
      );
  const specs = options.requests!;
  if (!Array.isArray(specs) || specs.length === 0)
    throw invalidOption('requests', 'a non-empty list of requests', specs);
  if (specs.length > REQUEST_FILE_LIMITS.requests)
    throw invalidOption('requests', `at most ${REQUEST_FILE_LIMITS.requests} requests`, specs.length);
  return specs.map((raw, i) => {
    const where = `requests entry ${i + 1}`;
    const spec = checkRequestSpec(raw, where);
    const fail = (message: string) => new NodescaleError('NS_ERR_REQUESTS_FILE', `${where}: ${message}`);
    let path = pathOf(target.url);
    if (spec.path !== undefined) {
      path = spec.path;
    } else if (spec.url !== undefined) {
      const url = URL.canParse(spec.url) ? new URL(spec.url) : null;
      if (url === null) throw fail(`url is not a URL: ${JSON.stringify(spec.url)}`);
      if (url.origin !== target.url.origin)
        throw fail(`url ${url.origin} is not the target's origin ${target.url.origin}: one run loads one origin`);
      path = pathOf(url);
    }
    const own = { ...headers, ...(spec.headers ?? {}) };
    let body: string | null = null;
    let jsonBody = false;
    if (typeof spec.body === 'string') body = spec.body;
    else if (spec.body !== undefined && spec.body !== null) {
      body = JSON.stringify(spec.body);
      jsonBody = true;
      if (!Object.keys(own).some((name) => name.toLowerCase() === 'content-type'))
        own['content-type'] = 'application/json';
    }
    const method = (spec.method ?? BENCH_DEFAULTS.method).toUpperCase();
    return {
      shape: { method, path, headers: own, body, jsonBody },
      name: spec.name ?? null,
      weight: spec.weight ?? null,
    };
  });
}
