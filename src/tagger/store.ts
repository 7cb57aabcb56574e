/**
 * Where the tagger keeps what it learned: the tags cache (URL → tags) and the reverse index (tag → URLs). One small
 * interface, one file per store: `embedded-store.ts` (in the process: an LRU and a Map, the default) and
 * `redis-store.ts` (shared by every API worker on every host: `--store redis://…`).
 */
import { checkClientTls, type ClientTls } from '../client-tls.ts';
import type { Logger } from '../logger.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { parseSentinelUrl, SENTINEL_SCHEME } from './redis-sentinel.ts';
import { MAX_TIMER_MS } from '../units.ts';

export interface StoreOptions {
  /** 'embedded' (default) or a redis:// or rediss:// URL. */
  store?: string;
  /** Redis: every key starts with it, so that several deployments share one Redis. Default nodescale:tagger. */
  storePrefix?: string;
  /** How long a URL's tags stay cached, ms (Redis: the key's TTL; embedded: the LRU's). Default 1 h. */
  cacheTtlMs?: number;
  /** URLs whose tags are cached (embedded only: Redis bounds the cache by TTL); 0: no cache. */
  cacheSize?: number;
  /** URLs in the index at most; past it, the URL tagged longest ago is dropped with its tags. Default 100 000. */
  maxIndexedUrls?: number;
  /** rediss: this connection's TLS: the CA to trust, a client certificate and its key (PEM, as tls.connect takes). */
  storeTls?: ClientTls;
  /** Redis: how long one command may take before the store counts as unavailable, ms. Default 1 s. */
  storeTimeoutMs?: number;
  /**
   * Fleet-wide single flight: how long a worker waits for another one's extraction of the same URL before doing it
   * itself, ms (the fetch's and the extraction's deadlines, by default).
   */
  singleFlightWaitMs?: number;
  log?: Logger;
}

export interface TagStore {
  /** 'embedded' or 'redis', as health reports it. */
  readonly kind: string;
  /** The cached tags of url; undefined on a miss, and while the store is unreachable (the caller extracts). */
  cached(url: string): Promise<string[] | undefined>;
  /**
   * Records url's tags: in the index (its old tags no longer lead to it), and in the cache when `cache`. Never throws:
   * a store that cannot be written to is degraded, and the caller still has its tags.
   */
  record(url: string, tags: readonly string[], options: { cache: boolean }): Promise<void>;
  /**
   * A page of the URLs tagged with tag, in URL order: at most `page.first` (default URL_PAGE.first), those after
   * `page.after` (exclusive).
   * NS_ERR_STORE_UNAVAILABLE when the store cannot answer.
   */
  urls(tag: string, page?: UrlPage): Promise<string[]>;
  /**
   * Runs `extract` for url, unless another process sharing the store is extracting it: then waits for its tags (or
   * its error), and extracts after all if that process dies or takes too long. The embedded store just runs it (the
   * tagger already shares one extraction per URL within a process).
   */
  once(url: string, extract: () => Promise<string[]>): Promise<string[]>;
  /** How many URLs and tags the index holds; null when the store cannot say. */
  size(): Promise<{ urls: number; tags: number } | null>;
  /** 'ok', or 'degraded' while a shared store is unreachable. */
  status(): 'ok' | 'degraded';
  close(): Promise<void>;
}

/**
 * A page of urls(tag). The cursor is a URL: the last one of the page before, so a client asks for the next page with
 * `after` = the last URL it got, and a URL added or dropped in between moves no other one (an offset would).
 */
export interface UrlPage {
  /** How many URLs at most, 1 to URL_PAGE.max. */
  first: number;
  /** Only the URLs sorted after this one. */
  after?: string | undefined;
}

/** urls(tag)'s page: 100 URLs unless asked for fewer or more, 500 at most (a page costs its size: graphql.ts). */
export const URL_PAGE = Object.freeze({ first: 100, max: 500 });

/** The page checked: `first` an integer from 1 to URL_PAGE.max (NS_ERR_INVALID_PAGE otherwise). */
export function checkUrlPage(page: Partial<UrlPage> = {}): UrlPage {
  const first = page.first ?? URL_PAGE.first;
  if (!Number.isInteger(first) || first < 1 || first > URL_PAGE.max)
    throw new NodescaleError(
      'NS_ERR_INVALID_PAGE',
      `first must be an integer from 1 to ${URL_PAGE.max}, got ${JSON.stringify(first)}`,
    );
  return page.after === undefined ? { first } : { first, after: page.after };
}

export const STORE_DEFAULTS = Object.freeze({
  store: 'embedded',
  storePrefix: 'nodescale:tagger',
  cacheTtlMs: 60 * 60_000,
  cacheSize: 10_000,
  maxIndexedUrls: 100_000,
  storeTimeoutMs: 1_000,
  singleFlightWaitMs: 30_000,
});

export type ResolvedStoreOptions = Required<Omit<StoreOptions, 'storeTls'>> & { storeTls: ClientTls | undefined };

/**
 * The store's options checked, each with the option named, and their defaults filled in: the one place a store's
 * options are read (`cacheSize: -5` ended in lru-cache's own TypeError, and `maxIndexedUrls: 'x'` was taken, and
 * then no URL was ever dropped).
 */
export function resolveStoreOptions(options: StoreOptions): ResolvedStoreOptions {
  const whole = (name: keyof typeof STORE_DEFAULTS, min: number, max: number): number => {
    const value = options[name] ?? STORE_DEFAULTS[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw invalidOption(name, `a whole number from ${min} to ${max}`, value);
    return value;
  };
  const store = checkStore(options.store ?? STORE_DEFAULTS.store);
  return {
    store,
    storePrefix: checkStorePrefix(options.storePrefix ?? STORE_DEFAULTS.storePrefix),
    cacheSize: whole('cacheSize', 0, 2 ** 32),
    maxIndexedUrls: whole('maxIndexedUrls', 1, 2 ** 32),
    cacheTtlMs: whole('cacheTtlMs', 1, MAX_TIMER_MS),
    storeTimeoutMs: whole('storeTimeoutMs', 1, MAX_TIMER_MS),
    singleFlightWaitMs: whole('singleFlightWaitMs', 0, MAX_TIMER_MS),
    storeTls: store === 'embedded' ? undefined : checkClientTls('storeTls', options.storeTls, store),
    log: options.log ?? (() => {}),
  };
}

/**
 * `store` checked: 'embedded', a redis:// or rediss:// URL with a host, or the sentinels of a master,
 * redis-sentinel://…#master (redis-sentinel.ts) (NS_ERR_INVALID_OPTION otherwise).
 */
export function checkStore(store: string, name = 'store'): string {
  if (store === 'embedded') return store;
  if (store.toLowerCase().startsWith(SENTINEL_SCHEME)) {
    parseSentinelUrl(store, name);
    return store;
  }
  let url: URL | null = null;
  try {
    url = new URL(store);
  } catch {
    // refused below
  }
  if (url === null || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '')
    throw invalidOption(name, 'embedded, a redis:// or rediss:// URL, or redis-sentinel://…#master', redactUrl(store));
  return store;
}

/** `storePrefix` checked: braces would change the hash tag, and spaces have no place in a key. */
export function checkStorePrefix(prefix: string, name = 'storePrefix'): string {
  if (!/^[\w:.-]{1,100}$/.test(prefix)) throw invalidOption(name, 'letters, digits, ":", ".", "_" or "-"', prefix);
  return prefix;
}
