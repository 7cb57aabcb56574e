/**
 * The tagging service's core, without HTTP: tags(url) fetches the page safely, extracts its tags on the compute
 * transport (off the event loop with the pool, or on compute services over a broker), and records them in the store
 * (the cache and the reverse index: in the process, or in Redis for the whole fleet); urls(tag) answers from the index.
 * Concurrent calls for the same URL share one fetch and one extraction: within the process always, and across every
 * process sharing a Redis store.
 */
import { createCompute, type Compute } from '../compute/compute.ts';
import { sibling } from '../module-file.ts';
import { AddressPolicy } from './address-policy.ts';
import { EmbeddedStore } from './embedded-store.ts';
import { fetchPage } from './fetch-page.ts';
import { resolveTaggerOptions, type ResolvedTaggerOptions, type TaggerOptions } from './options.ts';
import { RedisStore } from './redis-store.ts';
import { checkUrlPage, resolveStoreOptions, type StoreOptions, type TagStore, type UrlPage } from './store.ts';

/** The tagger's extraction tasks (a compute service runs them: `nodescale compute-worker tagger`). */
export const TAGGER_TASKS = sibling('./tasks', import.meta.url);

/**
 * The store `options.store` names: embedded, or Redis. A Redis that cannot be reached yet is a degraded store, not an
 * error; credentials, a database or a certificate that Redis refuses fail the open (they will not get better).
 */
export async function openStore(options: StoreOptions): Promise<TagStore> {
  const resolved = resolveStoreOptions(options);
  return resolved.store === 'embedded' ? new EmbeddedStore(resolved) : RedisStore.open(resolved.store, resolved);
}

export class Tagger {
  readonly compute: Compute;
  readonly store: TagStore;
  readonly #inFlight = new Map<string, Promise<string[]>>();
  readonly #fetch: Parameters<typeof fetchPage>[1];
  readonly #deadlineMs: number;

  private constructor(compute: Compute, store: TagStore, policy: AddressPolicy, options: ResolvedTaggerOptions) {
    this.compute = compute;
    this.store = store;
    this.#fetch = {
      policy,
      maxBytes: options.maxPageBytes,
      timeoutMs: options.fetchTimeoutMs,
      maxRedirects: options.maxRedirects,
    };
    this.#deadlineMs = options.extractDeadlineMs;
  }

  /** A tagger of these options (resolveTaggerOptions: checked, with the option named, before anything opens). */
  static async create(options: TaggerOptions = {}): Promise<Tagger> {
    return Tagger.open(resolveTaggerOptions(options));
  }

  /** A tagger of options resolved already (startTaggerServer resolves the server's with them). */
  static async open(options: ResolvedTaggerOptions): Promise<Tagger> {
    // The address policy validates `allow` before anything opens.
    const policy = new AddressPolicy(options.allow);
    const store = await openStore(options.store);
    try {
      return new Tagger(
        await createCompute({ transport: options.compute, tasks: TAGGER_TASKS, ...options.computeOptions }),
        store,
        policy,
        options,
      );
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /**
   * The page's tags; `cache: false` extracts again (the benchmark route measures extraction). `policy`: the addresses
   * this fetch may reach instead of the tagger's own (the benchmark's corpus, which the operator configured).
   */
  async tags(
    url: string,
    { cache = true, policy }: { cache?: boolean; policy?: AddressPolicy } = {},
  ): Promise<string[]> {
    if (cache) {
      const cached = await this.store.cached(url);
      if (cached !== undefined) return cached;
    }
    const key = `${cache}:${url}`;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#tag(url, cache, policy ?? this.#fetch.policy).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  #tag(url: string, cache: boolean, policy: AddressPolicy): Promise<string[]> {
    // What a wider policy fetched is not cached: a client's tags(url) must not read a page it could not fetch.
    const own = policy === this.#fetch.policy;
    const extract = async () => {
      const page = await fetchPage(url, { ...this.#fetch, policy });
      const tags = await this.compute.call<string[]>(
        'extract',
        { html: page.html, url: page.url },
        // Extraction is a pure function of the page: safe to run twice, so over a broker it is resent after a
        // reconnection and hedged when a service froze holding it.
        { deadlineMs: this.#deadlineMs, idempotent: true },
      );
      await this.store.record(url, tags, { cache: own });
      return tags;
    };
    // The fleet shares one extraction of a URL that clients ask for; the benchmark's re-extractions are not shared.
    return cache && own ? this.store.once(url, extract) : extract();
  }

  /**
   * A page of the URLs tagged with tag, in URL order: `first` of them (default 100, at most 500) after `after`.
   * NS_ERR_INVALID_PAGE for a page out of range; NS_ERR_STORE_UNAVAILABLE while a shared store cannot answer.
   */
  async urls(tag: string, page: Partial<UrlPage> = {}): Promise<string[]> {
    return this.store.urls(tag, checkUrlPage(page));
  }

  async close(): Promise<void> {
    await this.compute.close();
    await this.store.close();
  }
}

export type { TaggerOptions };
