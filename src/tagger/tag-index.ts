/**
 * The reverse index: tag → the URLs that carry it, kept in step with each URL's latest tags. Bounded: past
 * `maxUrls`, the URL tagged longest ago is dropped with its tags. Each tag's URLs are kept sorted, so that a page of
 * them is a binary search and a slice, however many there are (sorting on every read was O(n log n) per query).
 */
import type { UrlPage } from './store.ts';

export class TagIndex {
  /** Each array sorted (JavaScript's string order) and without duplicates. */
  readonly #urlsByTag = new Map<string, string[]>();
  /** Insertion order is tagging order: the first key is the oldest. */
  readonly #tagsByUrl = new Map<string, readonly string[]>();
  readonly #maxUrls: number;

  constructor(maxUrls = 100_000) {
    this.#maxUrls = maxUrls;
  }

  update(url: string, tags: readonly string[]): void {
    this.#remove(url);
    this.#tagsByUrl.set(url, tags);
    for (const tag of tags) {
      let urls = this.#urlsByTag.get(tag);
      if (urls === undefined) this.#urlsByTag.set(tag, (urls = []));
      const at = firstAfter(urls, url, true);
      if (urls[at] !== url) urls.splice(at, 0, url);
    }
    if (this.#tagsByUrl.size > this.#maxUrls) this.#remove(this.#tagsByUrl.keys().next().value!);
  }

  /** A page of the URLs carrying the tag, in order: at most `first`, after `after`. */
  urls(tag: string, { first, after }: UrlPage): string[] {
    const urls = this.#urlsByTag.get(tag.trim().toLowerCase()) ?? [];
    const from = after === undefined ? 0 : firstAfter(urls, after, false);
    return urls.slice(from, from + first);
  }

  get size(): { urls: number; tags: number } {
    return { urls: this.#tagsByUrl.size, tags: this.#urlsByTag.size };
  }

  #remove(url: string): void {
    const old = this.#tagsByUrl.get(url);
    if (old === undefined) return;
    this.#tagsByUrl.delete(url);
    for (const tag of old) {
      const urls = this.#urlsByTag.get(tag)!;
      const at = firstAfter(urls, url, true);
      if (urls[at] === url) urls.splice(at, 1);
      if (urls.length === 0) this.#urlsByTag.delete(tag);
    }
  }
}

/** The index of the first element of sorted above `value` (or equal to it, when `orEqual`): a binary search. */
function firstAfter(sorted: readonly string[], value: string, orEqual: boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const element = sorted[middle]!;
    if (element < value || (!orEqual && element === value)) low = middle + 1;
    else high = middle;
  }
  return low;
}
