/**
 * The reverse index: tag → the URLs that carry it, kept in step with each URL's latest tags. Bounded: past
 * `maxUrls`, the URL tagged longest ago is dropped with its tags.
 */
export class TagIndex {
  readonly #urlsByTag = new Map<string, Set<string>>();
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
      if (urls === undefined) this.#urlsByTag.set(tag, (urls = new Set()));
      urls.add(url);
    }
    if (this.#tagsByUrl.size > this.#maxUrls) this.#remove(this.#tagsByUrl.keys().next().value!);
  }

  /** The URLs carrying the tag, sorted. */
  urls(tag: string): string[] {
    return [...(this.#urlsByTag.get(tag.trim().toLowerCase()) ?? [])].sort();
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
      urls.delete(url);
      if (urls.size === 0) this.#urlsByTag.delete(tag);
    }
  }
}
