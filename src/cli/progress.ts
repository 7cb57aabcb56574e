/**
 * A one-line progress bar on stderr, redrawn in place; drawn only when stderr is a terminal.
 */
import { formatCount } from '../units.ts';

const WIDTH = 30;

export class ProgressBar {
  readonly #stream: NodeJS.WritableStream;
  readonly #enabled: boolean;
  #drawn = false;

  constructor(stream: NodeJS.WritableStream, enabled: boolean) {
    this.#stream = stream;
    this.#enabled = enabled;
  }

  /** Draws `fraction` (0..1) of the bar with a label before it and a detail after it. */
  update(label: string, fraction: number, detail: string): void {
    if (!this.#enabled) return;
    const clamped = Math.max(0, Math.min(1, fraction));
    const filled = Math.round(clamped * WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(WIDTH - filled);
    this.#stream.write(`\r\x1b[2K${label} ${bar} ${String(Math.round(clamped * 100)).padStart(3)}%  ${detail}`);
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) this.#stream.write('\r\x1b[2K');
    this.#drawn = false;
  }
}

/** The detail most progress lines show: requests so far and the rate. */
export function rateDetail(completed: number, elapsedMs: number): string {
  const perSecond = elapsedMs > 0 ? (completed * 1000) / elapsedMs : 0;
  return `${formatCount(completed)} req  ${formatCount(Math.round(perSecond))} req/s`;
}
