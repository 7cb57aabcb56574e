/**
 * The tagger's options, their defaults and their checks, in one place: the library (Tagger, startTaggerServer) resolves
 * them here once (resolveTaggerOptions, resolveTaggerServerOptions), and the CLI (`nodescale tagger`) and its help read
 * the defaults here.
 */
import type { ClientTls } from '../client-tls.ts';
import { transportNamed, transportsWith } from '../compute/transports.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { jsonLogger, type RuntimeOptions } from '../runtime/options.ts';
import { MAX_TIMER_MS } from '../units.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import { FETCH_DEFAULTS } from './fetch-page.ts';
import { resolveStoreOptions, STORE_DEFAULTS, type ResolvedStoreOptions, type StoreOptions } from './store.ts';

/** Where the cache and the index live (store.ts): `store`, `storePrefix`, `cacheTtlMs`, `cacheSize`, `maxIndexedUrls`. */
export interface TaggerOptions extends Omit<StoreOptions, 'singleFlightWaitMs'> {
  /**
   * Where extraction runs: 'pool' (worker threads), 'inline' (on the event loop, the talk's monolith), or 'amqp'
   * (compute services behind a RabbitMQ broker: `nodescale compute-worker tagger`).
   */
  compute?: string;
  /** amqp: the broker's URL. */
  broker?: string;
  /** amqps: the broker connection's TLS (the CA to trust, a client certificate and key, PEM). */
  brokerTls?: ClientTls;
  /** amqp: the task queue (default nodescale.compute). */
  queue?: string;
  /** Pool threads (default: usable CPUs − 1, at least 1). */
  threads?: number;
  /** Addresses or CIDR ranges that may be fetched from although private (the corpus on 127.0.0.1, say). */
  allow?: readonly string[];
  /** The largest page fetched, bytes. */
  maxPageBytes?: number;
  /** A whole fetch, redirects included, ms. */
  fetchTimeoutMs?: number;
  maxRedirects?: number;
  /** Extraction deadline, ms. */
  extractDeadlineMs?: number;
}

export interface TaggerServerOptions extends TaggerOptions {
  /** 0 for any free port. */
  port?: number;
  host?: string;
  /** Where the corpus is served, for /benchmark/get-tags. */
  corpusUrl?: string;
  /** The tag /benchmark/get-urls asks for. */
  benchmarkTag?: string;
  /** nodescale/runtime's options. */
  runtime?: RuntimeOptions;
}

export const TAGGER_DEFAULTS = Object.freeze({
  compute: 'pool',
  maxPageBytes: FETCH_DEFAULTS.maxBytes,
  fetchTimeoutMs: FETCH_DEFAULTS.timeoutMs,
  maxRedirects: FETCH_DEFAULTS.maxRedirects,
  extractDeadlineMs: 10_000,
  ...STORE_DEFAULTS,
  port: 3000,
  host: '127.0.0.1',
  corpusUrl: 'http://127.0.0.1:8080',
  benchmarkTag: 'telescope',
  /** The HTTP server's limits: a whole request, and its headers. */
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
});

const TAGGER_NAMES = [
  'compute',
  'broker',
  'brokerTls',
  'queue',
  'threads',
  'allow',
  'maxPageBytes',
  'fetchTimeoutMs',
  'maxRedirects',
  'extractDeadlineMs',
  'store',
  'storePrefix',
  'cacheTtlMs',
  'cacheSize',
  'maxIndexedUrls',
  'storeTls',
  'storeTimeoutMs',
  'log',
] as const satisfies readonly (keyof TaggerOptions)[];

const SERVER_NAMES = [
  'port',
  'host',
  'corpusUrl',
  'benchmarkTag',
  'runtime',
] as const satisfies readonly (keyof TaggerServerOptions)[];

export interface ResolvedTaggerOptions {
  compute: string;
  /** The transport's own options, by its names (the tagger's `broker` is the amqp transport's `url`). */
  computeOptions: Record<string, unknown>;
  allow: readonly string[];
  maxPageBytes: number;
  fetchTimeoutMs: number;
  maxRedirects: number;
  extractDeadlineMs: number;
  store: ResolvedStoreOptions;
}

export interface ResolvedTaggerServerOptions {
  tagger: ResolvedTaggerOptions;
  port: number;
  host: string;
  corpusUrl: string;
  benchmarkTag: string;
  runtime: RuntimeOptions;
}

function whole(name: string, value: unknown, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw invalidOption(name, `a whole number from ${min} to ${max}`, v);
  return v;
}

/** The tagger's names for the compute transport's options (`broker` is the amqp transport's `url`). */
const COMPUTE_OPTIONS = { threads: 'threads', broker: 'url', brokerTls: 'tls', queue: 'queue' } as const;

/**
 * The tagger's options checked, with the option named, and their defaults filled in; a name it does not know is
 * refused with the nearest. A compute option the chosen transport does not take is refused with the tagger's own
 * name for it (`broker` with compute 'pool'); the transport checks the values of the others.
 */
export function resolveTaggerOptions(options: TaggerOptions, alsoKnown: readonly string[] = []): ResolvedTaggerOptions {
  refuseUnknownOptions(options, [...TAGGER_NAMES, ...alsoKnown]);
  const transport = transportNamed(options.compute ?? TAGGER_DEFAULTS.compute, 'compute');
  const computeOptions: Record<string, unknown> = {};
  for (const [ours, theirs] of Object.entries(COMPUTE_OPTIONS)) {
    const value = options[ours as keyof typeof COMPUTE_OPTIONS];
    if (value === undefined) continue;
    if (!transport.optionNames.includes(theirs))
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `${ours} is an option of compute ${transportsWith(theirs).join(' or ')}, not of ${transport.name}`,
      );
    computeOptions[theirs] = value;
  }
  const fetchTimeoutMs = whole(
    'fetchTimeoutMs',
    options.fetchTimeoutMs,
    TAGGER_DEFAULTS.fetchTimeoutMs,
    1,
    MAX_TIMER_MS,
  );
  const extractDeadlineMs = whole(
    'extractDeadlineMs',
    options.extractDeadlineMs,
    TAGGER_DEFAULTS.extractDeadlineMs,
    1,
    MAX_TIMER_MS,
  );
  if (options.allow !== undefined && !Array.isArray(options.allow))
    throw invalidOption('allow', 'a list of addresses or CIDR ranges', options.allow);
  return {
    compute: transport.name,
    computeOptions,
    allow: options.allow ?? [],
    maxPageBytes: whole('maxPageBytes', options.maxPageBytes, TAGGER_DEFAULTS.maxPageBytes, 1, 2 ** 31),
    fetchTimeoutMs,
    maxRedirects: whole('maxRedirects', options.maxRedirects, TAGGER_DEFAULTS.maxRedirects, 0, 100),
    extractDeadlineMs,
    store: resolveStoreOptions({
      ...options,
      // Another worker's extraction is waited for as long as this one's own fetch and extraction could take.
      singleFlightWaitMs: Math.min(MAX_TIMER_MS, fetchTimeoutMs + extractDeadlineMs),
    }),
  };
}

/** The tagging API server's options: the tagger's, and the server's own (port, host, corpus, runtime). */
export function resolveTaggerServerOptions(options: TaggerServerOptions): ResolvedTaggerServerOptions {
  const { port, host, corpusUrl, benchmarkTag, runtime, ...rest } = options;
  // The store's warnings (Redis lost, back, not there at start) go to the runtime's logger unless given one.
  const tagger = resolveTaggerOptions({ ...rest, log: rest.log ?? runtime?.logger ?? jsonLogger }, SERVER_NAMES);
  return {
    tagger,
    port: port ?? TAGGER_DEFAULTS.port,
    host: host ?? TAGGER_DEFAULTS.host,
    corpusUrl: corpusUrl ?? TAGGER_DEFAULTS.corpusUrl,
    benchmarkTag: benchmarkTag ?? TAGGER_DEFAULTS.benchmarkTag,
    runtime: runtime ?? {},
  };
}
