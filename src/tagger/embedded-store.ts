/**
 * The default store: the cache (an LRU with a TTL) and the index inside this process. Fast and private: each API
 * worker has its own, and a restart starts empty (`--store redis://…` shares one).
 */
import { LRUCache } from 'lru-cache';
import { resolveStoreOptions, URL_PAGE, type ResolvedStoreOptions, type TagStore, type UrlPage } from './store.ts';
import { TagIndex } from './tag-index.ts';

export class EmbeddedStore implements TagStore {
  readonly kind = 'embedded';
  readonly index: TagIndex;
  readonly #cache: LRUCache<string, string[]> | null;

  constructor(options: ResolvedStoreOptions = resolveStoreOptions({})) {
    const size = options.cacheSize;
    this.#cache = size === 0 ? null : new LRUCache({ max: size, ttl: options.cacheTtlMs });
    this.index = new TagIndex(options.maxIndexedUrls);
  }

  async cached(url: string): Promise<string[] | undefined> {
    return this.#cache?.get(url);
  }

  async record(url: string, tags: readonly string[], { cache }: { cache: boolean }): Promise<void> {
    this.index.update(url, tags);
    if (cache) this.#cache?.set(url, [...tags]);
  }

  async urls(tag: string, page: UrlPage = { first: URL_PAGE.first }): Promise<string[]> {
    return this.index.urls(tag, page);
  }

  once(_url: string, extract: () => Promise<string[]>): Promise<string[]> {
    return extract();
  }

  async size(): Promise<{ urls: number; tags: number }> {
    return this.index.size;
  }

  status(): 'ok' {
    return 'ok';
  }

  async close(): Promise<void> {}
}
