/**
 * The tagger's options and their defaults, in one place: the library (Tagger, startTaggerServer), the CLI
 * (`nodescale tagger`) and its help read them here.
 */
import type { ClientTls } from '../client-tls.ts';
import type { RuntimeOptions } from '../runtime/options.ts';
import { FETCH_DEFAULTS } from './fetch-page.ts';
import { STORE_DEFAULTS, type StoreOptions } from './store.ts';

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
