/**
 * The tagging service's core, without HTTP: tags(url) fetches the page safely, extracts its tags on the compute
 * transport (off the event loop with the pool), caches them (LRU) and updates the reverse index; urls(tag) answers
 * from the index. Concurrent calls for the same URL share one fetch and one extraction.
 */
import { LRUCache } from 'lru-cache';
import { createCompute, type Compute } from '../compute/compute.ts';
import { sibling } from '../module-file.ts';
import { AddressPolicy } from './address-policy.ts';
import { fetchPage } from './fetch-page.ts';
import { TAGGER_DEFAULTS, type TaggerOptions } from './options.ts';
import { TagIndex } from './tag-index.ts';

/** The tagger's extraction tasks (a compute service runs them: `nodescale compute-worker tagger`). */
export const TAGGER_TASKS = sibling('./tasks', import.meta.url);

export class Tagger {
  readonly compute: Compute;
  readonly index = new TagIndex();
  readonly #cache: LRUCache<string, string[]> | null;
  readonly #inFlight = new Map<string, Promise<string[]>>();
  readonly #fetch: Parameters<typeof fetchPage>[1];
  readonly #deadlineMs: number;

  private constructor(compute: Compute, policy: AddressPolicy, options: TaggerOptions) {
    this.compute = compute;
    this.#cache =
      options.cacheSize === 0 ? null : new LRUCache({ max: options.cacheSize ?? TAGGER_DEFAULTS.cacheSize });
    this.#fetch = {
      policy,
      maxBytes: options.maxPageBytes,
      timeoutMs: options.fetchTimeoutMs,
      maxRedirects: options.maxRedirects,
    };
    this.#deadlineMs = options.extractDeadlineMs ?? TAGGER_DEFAULTS.extractDeadlineMs;
  }

  static async create(options: TaggerOptions = {}): Promise<Tagger> {
    // The address policy validates `allow` before any thread starts.
    const policy = new AddressPolicy(options.allow);
    const compute = await createCompute({
      transport: options.compute,
      tasks: TAGGER_TASKS,
      ...(options.compute === 'amqp' ? { url: options.broker, queue: options.queue } : { threads: options.threads }),
    });
    return new Tagger(compute, policy, options);
  }

  /**
   * The page's tags; `cache: false` extracts again (the benchmark route measures extraction). `policy`: the addresses
   * this fetch may reach instead of the tagger's own (the benchmark's corpus, which the operator configured).
   */
  async tags(
    url: string,
    { cache = true, policy }: { cache?: boolean; policy?: AddressPolicy } = {},
  ): Promise<string[]> {
    const cached = cache ? this.#cache?.get(url) : undefined;
    if (cached !== undefined) return cached;
    const key = `${cache}:${url}`;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#tag(url, policy).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #tag(url: string, policy = this.#fetch.policy): Promise<string[]> {
    const page = await fetchPage(url, { ...this.#fetch, policy });
    const tags = await this.compute.call<string[]>(
      'extract',
      { html: page.html, url: page.url },
      { deadlineMs: this.#deadlineMs },
    );
    this.index.update(url, tags);
    // What a wider policy fetched is not cached: a client's tags(url) must not read a page it could not fetch.
    if (policy === this.#fetch.policy) this.#cache?.set(url, tags);
    return tags;
  }

  urls(tag: string): string[] {
    return this.index.urls(tag);
  }

  close(): Promise<void> {
    return this.compute.close();
  }
}

export type { TaggerOptions };
