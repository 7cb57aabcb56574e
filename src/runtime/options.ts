/**
 * Options of the runtime layer: one type, one frozen set of defaults, one resolver that validates and fills in.
 * Every threshold has a documented default (docs/runtime.md); `false` turns a part off.
 *
 * Past the ~400 lines a file keeps to, on purpose: it is the runtime's whole contract with its user, read top to
 * bottom as docs/runtime.md's table is (each option's type and meaning, its default, its check), and each section's
 * resolver needs its own types and defaults: split, the three would sit in different files for every option.
 */
import type { ResolvedStall } from './stall.ts';
import type { BlockList } from 'node:net';
import { trustedProxies } from './private-client.ts';
import type { IncomingMessage } from 'node:http';
import { register as defaultRegistry, type Registry } from 'prom-client';
import os from 'node:os';
import path from 'node:path';
import { invalidOption } from '../errors.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import { IDLE_DRAIN_MS } from './drain-server.ts';
import type { AdminOptions } from '../admin-options.ts';
import type { Logger, LogLevel } from '../logger.ts';
import { isSupervisedWorker, supervisorAdminSocket } from './supervisor-client.ts';

export type Priority = 'low' | 'normal' | 'high';
export type { Logger, LogLevel };

export interface OverloadOptions {
  /** Shed when the event-loop delay p99 of an interval passes this, ms. Default 200; 0 turns it off. */
  maxEventLoopDelayMs?: number;
  /** Shed when event-loop utilisation of an interval passes this (0..1). Default 0 (off): a busy loop is not a drowning one. */
  maxEventLoopUtilization?: number;
  /** Shed when heap used passes this fraction of the heap limit. Default 0.9; 0 turns it off. */
  maxHeapUsedRatio?: number;
  /** Shed when RSS passes this many bytes. Default 0 (off). */
  maxRssBytes?: number;
  /** Shed a request that arrives while this many are in flight. Default 0 (off). */
  maxInFlight?: number;
  /**
   * Shed a request that finds the event loop busy for longer than this since it last ran its timers, ms: the time the
   * requests of the current batch have already waited. Per request, no hysteresis: it bounds how long one turn of the
   * loop can run, so health checks and cheap routes are answered even at many times a CPU-bound route's capacity.
   * Set it near the route's p99 at the knee (`nodescale sweep`) to bound the latency of what is accepted.
   * Default: maxEventLoopDelayMs (200); 0 turns it off.
   */
  maxLagMs?: number;
  /**
   * The lag limit while the loop is shedding (in the overload state, or within a second of shedding a request for
   * lag), ms, when lower than maxLagMs: a smaller turn budget once the loop is known to be overrun, so that turns stay
   * short and a liveness probe on a new connection is answered within a fraction of a second, even at ten times a
   * CPU-bound route's capacity; what is accepted then waits less too. A busy loop that is not overrun keeps
   * maxLagMs. Default 50; 0: maxLagMs always.
   */
  shedLagMs?: number;
  /** Leave overload when every measure is below this fraction of its threshold. Default 0.8. */
  recoverRatio?: number;
  /**
   * Consecutive samples over a threshold before the overload state (which sheds every normal request) starts.
   * Default 2: one slow second (a neighbour starting, a reload beside it) is not overload; sustained overload is
   * met at once by maxLagMs meanwhile.
   */
  enterAfterSamples?: number;
  /** Consecutive calm samples before the overload state ends. Default 1. */
  exitAfterSamples?: number;
  /** Paths (exact, query ignored) or a predicate for requests never shed. Health and metrics always are. */
  exempt?: readonly string[] | ((req: IncomingMessage) => boolean);
  /** A request's priority: 'low' is shed early (at 80% of a threshold), 'high' only past twice a threshold. Default 'normal'. */
  priority?: (req: IncomingMessage) => Priority;
  /** Upper bound of the Retry-After header, seconds. Default 60. */
  maxRetryAfterSeconds?: number;
}

export interface ShutdownOptions {
  /** How long in-flight requests get to finish, ms. Default 10 000. */
  graceMs?: number;
  /**
   * Signals that start a graceful shutdown. Default ['SIGTERM', 'SIGINT'], or ['SIGTERM'] as a worker of
   * `nodescale run` (the supervisor turns a Ctrl-C into a SIGTERM to each worker); [] installs no handler.
   */
  signals?: readonly NodeJS.Signals[];
  /** Exit the process when done (0) or forced (1). Default true. */
  exit?: boolean;
  /**
   * Keep-alive connections are not cut at once: each takes its next request (answered with Connection: close), and
   * those still idle after this long are closed, ms. Default 1000.
   */
  idleDrainMs?: number;
}

export interface LeakOptions {
  /** How far back the post-GC heap baseline is looked at, ms. Default 600 000 (10 min). */
  windowMs?: number;
  /** Major-GC samples needed in the window before judging. Default 6. */
  minSamples?: number;
  /** Fire when the baseline grows faster than this, bytes per minute, steadily (R² ≥ 0.6). Default 1 MiB/min. */
  minGrowthBytesPerMinute?: number;
  /** Fire when, at the current growth, the heap limit is reached within this, ms. Default 3 600 000 (1 h). */
  horizonMs?: number;
  /** Where heap snapshots are written (mode 0600); null writes none. Default null. */
  snapshotDir?: string | null;
  /** At most one snapshot per this long, ms. Default 3 600 000. */
  snapshotCooldownMs?: number;
}

export interface PostMortemOptions {
  /** Where crash bundles are written: a directory of this user's that others cannot write. Default <tmpdir>/nodescale-<uid>/crash. */
  dir?: string;
  /** Add a heap snapshot to the bundle (when memory allows). Default false. */
  heapSnapshot?: boolean;
  /**
   * Crash bundles kept in `dir`: writing one removes the oldest beyond this many (a crash loop must not fill the
   * disk; heap snapshots are large). Default 20; 0 keeps every one.
   */
  keep?: number;
}

export interface StallOptions {
  /** A loop held this long is a stall, ms. Default 500. */
  thresholdMs?: number;
  /**
   * After the stack, the rest of the block profiled, at most this long, ms: where its stack samples were (in the
   * capture) and V8's CPU profile (beside it, `.cpuprofile`: 20–50 KiB for the demo's blocks of about 1 s). Default
   * 1000, at most 10 000 (a stall's first 10 s say where it is); 0 takes neither.
   */
  profileMs?: number;
  /** Stalls captured in a minute at most (the others are counted, not captured). Default 10. */
  maxPerMinute?: number;
  /** Where captures are written: as postMortem.dir. Default <tmpdir>/nodescale-<uid>/crash. */
  dir?: string;
  /** Captures kept in `dir`: writing one removes the oldest beyond this many. Default 50; 0 keeps every one. */
  keep?: number;
}

export interface RuntimeOptions {
  /** Sampling interval of the runtime metrics, ms. Default 1000. */
  sampleIntervalMs?: number;
  /** Samples kept in memory (the ring buffer the console and dashboards read). Default 300. */
  historySize?: number;
  /** Path of the Prometheus endpoint; false serves none. Default '/metrics'. */
  metricsPath?: string | false;
  /**
   * Who the metrics endpoint answers on the app's own port. 'private' (default): clients on loopback and private
   * addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, link-local), and not through a proxy (a request
   * carrying X-Forwarded-For, Forwarded or X-Real-IP goes to the app, as for any other path): heap sizes, versions
   * and route names do not reach the internet. 'any': every client, for a port only a scraper can reach.
   */
  metricsAccess?: 'private' | 'any';
  /**
   * The balancers in front (addresses or CIDR ranges) whose X-Forwarded-For is believed: the request log's client
   * address, and who counts as private for `metricsAccess`, are then the client the balancer names. Default []:
   * no one's (anyone can send the header). nodescale deploy's balancers set it.
   */
  trustProxy?: readonly string[];
  /** Include prom-client's default metrics (process_*, nodejs_*). Default true. */
  defaultMetrics?: boolean;
  /**
   * The app's own prom-client registries, served on /metrics after the runtime's (a name the runtime already serves
   * is left out). Default [prom-client's default registry]: counters an app registers the usual way appear as they are.
   */
  registries?: readonly Registry[];
  /** Buckets of the HTTP latency histogram, seconds. Default 1 ms to 10 s. */
  latencyBuckets?: readonly number[];
  /** Liveness path. Default '/healthz'. */
  livenessPath?: string;
  /** Readiness path. Default '/readyz'. */
  readinessPath?: string;
  /** When readiness starts: when the server listens, or when the app calls runtime.setReady(). Default 'listening'. */
  readyWhen?: 'listening' | 'manual';
  /** Route label of a request for the HTTP metrics (low cardinality!). Default: what an adapter says, else '*'. */
  route?: (req: IncomingMessage) => string;
  /** Refuse requests whose Content-Length passes this with 413. Default 1 MiB; 0 turns it off. */
  maxBodyBytes?: number;
  overload?: OverloadOptions | false;
  shutdown?: ShutdownOptions | false;
  leak?: LeakOptions | false;
  postMortem?: PostMortemOptions | false;
  /**
   * Stall capture (stall.ts): when the event loop is held past `thresholdMs`, a watchdog thread takes the main
   * thread's stack while it is held, and the request that started last. true for the defaults. Default off.
   */
  stall?: StallOptions | boolean;
  /** The admin console (docs/console.md): a Unix socket, or TLS + auth over TCP. Default false: closed. */
  admin?: AdminOptions | false;
  /** Where the runtime logs. Default: one JSON line per event on stderr. */
  logger?: Logger;
}

export interface ResolvedOverload {
  maxEventLoopDelayMs: number;
  maxEventLoopUtilization: number;
  maxHeapUsedRatio: number;
  maxRssBytes: number;
  maxInFlight: number;
  maxLagMs: number;
  shedLagMs: number;
  recoverRatio: number;
  enterAfterSamples: number;
  exitAfterSamples: number;
  exempt: (req: IncomingMessage) => boolean;
  priority: ((req: IncomingMessage) => Priority) | null;
  maxRetryAfterSeconds: number;
}

export interface ResolvedShutdown {
  graceMs: number;
  signals: NodeJS.Signals[];
  exit: boolean;
  idleDrainMs: number;
}
export type ResolvedLeak = Required<LeakOptions>;
export type ResolvedPostMortem = Required<PostMortemOptions>;

export interface ResolvedRuntimeOptions {
  sampleIntervalMs: number;
  historySize: number;
  metricsPath: string | null;
  metricsAccess: 'private' | 'any';
  /** The trusted balancers, or null when there are none. */
  trustProxy: BlockList | null;
  defaultMetrics: boolean;
  registries: Registry[];
  latencyBuckets: number[];
  livenessPath: string;
  readinessPath: string;
  readyWhen: 'listening' | 'manual';
  route: ((req: IncomingMessage) => string) | null;
  maxBodyBytes: number;
  overload: ResolvedOverload | null;
  shutdown: ResolvedShutdown | null;
  leak: ResolvedLeak | null;
  postMortem: ResolvedPostMortem | null;
  stall: ResolvedStall | null;
  admin: AdminOptions | null;
  logger: Logger;
}

export const RUNTIME_DEFAULTS = Object.freeze({
  sampleIntervalMs: 1000,
  historySize: 300,
  metricsPath: '/metrics',
  metricsAccess: 'private',
  defaultMetrics: true,
  latencyBuckets: Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  livenessPath: '/healthz',
  readinessPath: '/readyz',
  readyWhen: 'listening',
  maxBodyBytes: 1024 * 1024,
  overload: Object.freeze({
    maxEventLoopDelayMs: 200,
    maxEventLoopUtilization: 0,
    maxHeapUsedRatio: 0.9,
    maxRssBytes: 0,
    maxInFlight: 0,
    /** null: the same as maxEventLoopDelayMs. */
    maxLagMs: null as number | null,
    shedLagMs: 50,
    recoverRatio: 0.8,
    enterAfterSamples: 2,
    exitAfterSamples: 1,
    maxRetryAfterSeconds: 60,
  }),
  shutdown: Object.freeze({
    graceMs: 10_000,
    signals: Object.freeze(['SIGTERM', 'SIGINT'] as NodeJS.Signals[]),
    exit: true,
    idleDrainMs: IDLE_DRAIN_MS,
  }),
  leak: Object.freeze({
    windowMs: 600_000,
    minSamples: 6,
    minGrowthBytesPerMinute: 1024 * 1024,
    horizonMs: 3_600_000,
    snapshotDir: null,
    snapshotCooldownMs: 3_600_000,
  }),
  // Per user, beside the admin sockets (<tmpdir>/nodescale-<uid>/, mode 0700): never a directory shared in /tmp.
  postMortem: Object.freeze({
    dir: path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`, 'crash'),
    heapSnapshot: false,
    keep: 20,
  }),
  stall: Object.freeze({ thresholdMs: 500, profileMs: 1000, maxPerMinute: 10, keep: 50 }),
});

/** Logs one JSON line per event on stderr: what pino would write, without the dependency. */
export const jsonLogger: Logger = (level, message, fields = {}) => {
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), pid: process.pid, name: 'nodescale', msg: message, ...fields })}\n`,
  );
};

function num(name: string, value: unknown, fallback: number, min: number, max = Infinity, integer = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw invalidOption(
      name,
      `${integer ? 'an integer' : 'a number'} from ${min} to ${max === Infinity ? '∞' : max}`,
      value,
    );
  }
  return value;
}

function pathOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/')) throw invalidOption(name, 'a path starting with "/"', value);
  return value;
}

function fn<T>(name: string, value: unknown): T | null {
  if (value === undefined) return null;
  if (typeof value !== 'function') throw invalidOption(name, 'a function', typeof value);
  return value as T;
}

function section<T extends object>(
  name: string,
  value: T | false | undefined,
  known?: readonly (keyof T & string)[],
): T | null {
  if (value === false) return null;
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidOption(name, 'an object or false', value);
  if (known !== undefined) refuseUnknownOptions(value, known, `${name}.`);
  return value;
}

function trustProxyOption(value: unknown): BlockList | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string'))
    throw invalidOption('trustProxy', 'a list of addresses or CIDR ranges', value);
  return value.length === 0 ? null : trustedProxies(value);
}

function metricsAccessOption(value: unknown): 'private' | 'any' {
  if (value !== 'private' && value !== 'any') throw invalidOption('metricsAccess', 'private or any', value);
  return value;
}

/** The names each options object knows: anything else is refused (a typo would otherwise be ignored). */
const KNOWN = {
  runtime: [
    'sampleIntervalMs',
    'historySize',
    'metricsPath',
    'metricsAccess',
    'trustProxy',
    'defaultMetrics',
    'registries',
    'latencyBuckets',
    'livenessPath',
    'readinessPath',
    'readyWhen',
    'route',
    'maxBodyBytes',
    'overload',
    'shutdown',
    'leak',
    'postMortem',
    'stall',
    'admin',
    'logger',
  ],
  overload: [
    'maxEventLoopDelayMs',
    'maxEventLoopUtilization',
    'maxHeapUsedRatio',
    'maxRssBytes',
    'maxInFlight',
    'maxLagMs',
    'shedLagMs',
    'recoverRatio',
    'enterAfterSamples',
    'exitAfterSamples',
    'exempt',
    'priority',
    'maxRetryAfterSeconds',
  ],
  shutdown: ['graceMs', 'signals', 'exit', 'idleDrainMs'],
  leak: ['windowMs', 'minSamples', 'minGrowthBytesPerMinute', 'horizonMs', 'snapshotDir', 'snapshotCooldownMs'],
  postMortem: ['dir', 'heapSnapshot', 'keep'],
  stall: ['thresholdMs', 'profileMs', 'maxPerMinute', 'dir', 'keep'],
} as const satisfies {
  runtime: readonly (keyof RuntimeOptions)[];
  overload: readonly (keyof OverloadOptions)[];
  shutdown: readonly (keyof ShutdownOptions)[];
  leak: readonly (keyof LeakOptions)[];
  postMortem: readonly (keyof PostMortemOptions)[];
  stall: readonly (keyof StallOptions)[];
};

function pathOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q === -1 ? (url ?? '') : url!.slice(0, q);
}

function resolveOverload(value: OverloadOptions | false | undefined): ResolvedOverload | null {
  const given = section('overload', value, KNOWN.overload);
  if (given === null) return null;
  const defaults = RUNTIME_DEFAULTS.overload;
  let exempt: (req: IncomingMessage) => boolean = () => false;
  if (Array.isArray(given.exempt)) {
    const paths = new Set(given.exempt.map((p, i) => pathOption(`overload.exempt[${i}]`, p, '/')));
    exempt = (req) => paths.has(pathOf(req.url));
  } else if (given.exempt !== undefined) {
    exempt = fn<(req: IncomingMessage) => boolean>('overload.exempt', given.exempt)!;
  }
  const maxEventLoopDelayMs = num(
    'overload.maxEventLoopDelayMs',
    given.maxEventLoopDelayMs,
    defaults.maxEventLoopDelayMs,
    0,
  );
  return {
    maxEventLoopDelayMs,
    maxEventLoopUtilization: num(
      'overload.maxEventLoopUtilization',
      given.maxEventLoopUtilization,
      defaults.maxEventLoopUtilization,
      0,
      1,
    ),
    maxHeapUsedRatio: num('overload.maxHeapUsedRatio', given.maxHeapUsedRatio, defaults.maxHeapUsedRatio, 0, 1),
    maxRssBytes: num('overload.maxRssBytes', given.maxRssBytes, defaults.maxRssBytes, 0),
    maxInFlight: num('overload.maxInFlight', given.maxInFlight, defaults.maxInFlight, 0, Infinity, true),
    maxLagMs: num('overload.maxLagMs', given.maxLagMs, defaults.maxLagMs ?? maxEventLoopDelayMs, 0),
    shedLagMs: num('overload.shedLagMs', given.shedLagMs, defaults.shedLagMs, 0),
    recoverRatio: num('overload.recoverRatio', given.recoverRatio, defaults.recoverRatio, 0.01, 1),
    enterAfterSamples: num(
      'overload.enterAfterSamples',
      given.enterAfterSamples,
      defaults.enterAfterSamples,
      1,
      1000,
      true,
    ),
    exitAfterSamples: num(
      'overload.exitAfterSamples',
      given.exitAfterSamples,
      defaults.exitAfterSamples,
      1,
      1000,
      true,
    ),
    exempt,
    priority: fn('overload.priority', given.priority),
    maxRetryAfterSeconds: num(
      'overload.maxRetryAfterSeconds',
      given.maxRetryAfterSeconds,
      defaults.maxRetryAfterSeconds,
      1,
      86_400,
      true,
    ),
  };
}

function resolveShutdown(value: ShutdownOptions | false | undefined): ResolvedShutdown | null {
  const given = section('shutdown', value, KNOWN.shutdown);
  if (given === null) return null;
  const defaults = RUNTIME_DEFAULTS.shutdown;
  if (
    given.signals !== undefined &&
    (!Array.isArray(given.signals) || given.signals.some((s) => typeof s !== 'string' || !s.startsWith('SIG')))
  ) {
    throw invalidOption('shutdown.signals', 'a list of signal names such as ["SIGTERM"]', given.signals);
  }
  if (given.exit !== undefined && typeof given.exit !== 'boolean')
    throw invalidOption('shutdown.exit', 'a boolean', given.exit);
  return {
    graceMs: num('shutdown.graceMs', given.graceMs, defaults.graceMs, 0),
    // Under nodescale run, the supervisor decides: a Ctrl-C reaches every process of the terminal's group, workers
    // included, and the supervisor answers it with a SIGTERM to each (supervisor-client.ts ignores the SIGINT itself).
    signals: [...(given.signals ?? (isSupervisedWorker() ? ['SIGTERM'] : defaults.signals))],
    exit: given.exit ?? defaults.exit,
    idleDrainMs: num('shutdown.idleDrainMs', given.idleDrainMs, defaults.idleDrainMs, 0),
  };
}

function resolveLeak(value: LeakOptions | false | undefined): ResolvedLeak | null {
  const given = section('leak', value, KNOWN.leak);
  if (given === null) return null;
  const defaults = RUNTIME_DEFAULTS.leak;
  if (given.snapshotDir !== undefined && given.snapshotDir !== null && typeof given.snapshotDir !== 'string')
    throw invalidOption('leak.snapshotDir', 'a directory path or null', given.snapshotDir);
  return {
    windowMs: num('leak.windowMs', given.windowMs, defaults.windowMs, 1),
    minSamples: num('leak.minSamples', given.minSamples, defaults.minSamples, 3, 10_000, true),
    minGrowthBytesPerMinute: num(
      'leak.minGrowthBytesPerMinute',
      given.minGrowthBytesPerMinute,
      defaults.minGrowthBytesPerMinute,
      0,
    ),
    horizonMs: num('leak.horizonMs', given.horizonMs, defaults.horizonMs, 0),
    snapshotDir: given.snapshotDir ?? defaults.snapshotDir,
    snapshotCooldownMs: num('leak.snapshotCooldownMs', given.snapshotCooldownMs, defaults.snapshotCooldownMs, 0),
  };
}

function resolvePostMortem(value: PostMortemOptions | false | undefined): ResolvedPostMortem | null {
  const given = section('postMortem', value, KNOWN.postMortem);
  if (given === null) return null;
  if (given.dir !== undefined && typeof given.dir !== 'string')
    throw invalidOption('postMortem.dir', 'a directory path', given.dir);
  if (given.heapSnapshot !== undefined && typeof given.heapSnapshot !== 'boolean')
    throw invalidOption('postMortem.heapSnapshot', 'a boolean', given.heapSnapshot);
  return {
    dir: given.dir ?? RUNTIME_DEFAULTS.postMortem.dir,
    heapSnapshot: given.heapSnapshot ?? false,
    keep: num('postMortem.keep', given.keep, RUNTIME_DEFAULTS.postMortem.keep, 0, 1_000_000, true),
  };
}

function resolveStall(value: StallOptions | boolean | undefined): ResolvedStall | null {
  if (value === undefined || value === false) return null;
  const given = section('stall', value === true ? {} : value, KNOWN.stall);
  if (given === null) return null;
  if (given.dir !== undefined && typeof given.dir !== 'string')
    throw invalidOption('stall.dir', 'a directory path', given.dir);
  const defaults = RUNTIME_DEFAULTS.stall;
  return {
    thresholdMs: num('stall.thresholdMs', given.thresholdMs, defaults.thresholdMs, 50, 3_600_000),
    profileMs: num('stall.profileMs', given.profileMs, defaults.profileMs, 0, 10_000, true),
    maxPerMinute: num('stall.maxPerMinute', given.maxPerMinute, defaults.maxPerMinute, 1, 10_000, true),
    dir: given.dir ?? RUNTIME_DEFAULTS.postMortem.dir,
    keep: num('stall.keep', given.keep, defaults.keep, 0, 1_000_000, true),
  };
}

export function resolveRuntimeOptions(options: RuntimeOptions = {}): ResolvedRuntimeOptions {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  refuseUnknownOptions(options, KNOWN.runtime);
  const defaults = RUNTIME_DEFAULTS;
  const raw = options.latencyBuckets ?? defaults.latencyBuckets;
  const buckets: number[] = Array.isArray(raw) ? [...raw] : [];
  if (
    buckets.length === 0 ||
    buckets.some((b, i) => typeof b !== 'number' || !(b > 0) || (i > 0 && b <= buckets[i - 1]!))
  ) {
    throw invalidOption('latencyBuckets', 'ascending numbers of seconds > 0', options.latencyBuckets);
  }
  if (options.readyWhen !== undefined && options.readyWhen !== 'listening' && options.readyWhen !== 'manual') {
    throw invalidOption('readyWhen', '"listening" or "manual"', options.readyWhen);
  }
  if (options.defaultMetrics !== undefined && typeof options.defaultMetrics !== 'boolean')
    throw invalidOption('defaultMetrics', 'a boolean', options.defaultMetrics);
  return {
    sampleIntervalMs: num('sampleIntervalMs', options.sampleIntervalMs, defaults.sampleIntervalMs, 10, 3_600_000),
    historySize: num('historySize', options.historySize, defaults.historySize, 1, 1_000_000, true),
    metricsPath:
      options.metricsPath === false ? null : pathOption('metricsPath', options.metricsPath, defaults.metricsPath),
    metricsAccess: metricsAccessOption(options.metricsAccess ?? defaults.metricsAccess),
    trustProxy: trustProxyOption(options.trustProxy),
    defaultMetrics: options.defaultMetrics ?? defaults.defaultMetrics,
    registries: registriesOption(options.registries),
    latencyBuckets: buckets,
    livenessPath: pathOption('livenessPath', options.livenessPath, defaults.livenessPath),
    readinessPath: pathOption('readinessPath', options.readinessPath, defaults.readinessPath),
    readyWhen: options.readyWhen ?? 'listening',
    route: fn('route', options.route),
    maxBodyBytes: num('maxBodyBytes', options.maxBodyBytes, defaults.maxBodyBytes, 0),
    overload: resolveOverload(options.overload),
    shutdown: resolveShutdown(options.shutdown),
    leak: resolveLeak(options.leak),
    postMortem: resolvePostMortem(options.postMortem),
    stall: resolveStall(options.stall),
    admin: resolveAdmin(options.admin),
    logger: fn<Logger>('logger', options.logger) ?? jsonLogger,
  };
}

function registriesOption(value: unknown): Registry[] {
  if (value === undefined) return [defaultRegistry];
  // instanceof would miss a registry of another copy of prom-client (an app's own dependency): duck-type it.
  const isRegistry = (r: unknown) =>
    typeof r === 'object' &&
    r !== null &&
    typeof (r as Registry).getMetricsAsArray === 'function' &&
    typeof (r as Registry).getSingleMetricAsString === 'function';
  if (!Array.isArray(value) || !value.every(isRegistry))
    throw invalidOption('registries', 'an array of prom-client registries', value);
  return [...(value as Registry[])];
}

/** Closed unless configured; under `nodescale run --console`, a private socket the supervisor names. */
function resolveAdmin(admin: AdminOptions | false | undefined): AdminOptions | null {
  if (admin === false) return null;
  if (admin !== undefined) return section('admin', admin);
  const socketPath = supervisorAdminSocket();
  return socketPath === undefined ? null : { socketPath };
}

export { pathOf };
