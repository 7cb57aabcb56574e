/** A fixed-size ring of the most recent items: pushing past capacity drops the oldest. */
export class RingBuffer<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#items = new Array<T | undefined>(Math.max(1, capacity));
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.#items.length;
    this.#size = Math.min(this.#size + 1, this.#items.length);
  }

  get size(): number {
    return this.#size;
  }

  /** The newest item, or undefined when empty. */
  latest(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[(this.#next - 1 + this.#items.length) % this.#items.length];
  }

  /** Items oldest first; at most the newest `count`. */
  toArray(count = this.#size): T[] {
    const n = Math.min(count, this.#size);
    const out: T[] = [];
    for (let i = n; i > 0; i--) out.push(this.#items[(this.#next - i + this.#items.length) % this.#items.length]!);
    return out;
  }
}
