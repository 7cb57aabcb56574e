/**
 * When to restart a crashed worker: exponential backoff with equal jitter (src/backoff.ts: the ceiling doubles with
 * each crash in a row, from `initialMs` up to `maxMs`, and the delay is a random point in its upper half, so that
 * workers do not restart in lockstep and the delay still grows), reset once a worker has stayed up for `stableMs`.
 *
 * A crash loop is more than `maxRestarts` crashes in a row, none after a stable run: the slot is given up on and
 * reported, not respawned forever (forever's and pm2's spinning CPU). The count runs since the last stable period,
 * not within a fixed window, so that the verdict agrees with the backoff: a window of fixed length would hold fewer
 * and fewer crashes as the delays grow, and with the defaults it never held enough (an app that exits at once was
 * still restarted every 15–30 s minutes later). With the defaults the verdict comes on the 11th crash in a row,
 * 40–81 s after the first (`crashLoopAfterMs()`).
 */
import { backoffCeiling, backoffDelay } from '../backoff.ts';

export interface RestartPolicyOptions {
  initialMs: number;
  maxMs: number;
  stableMs: number;
  maxRestarts: number;
}

export const RESTART_DEFAULTS: Readonly<RestartPolicyOptions> = Object.freeze({
  initialMs: 100,
  maxMs: 30_000,
  stableMs: 60_000,
  maxRestarts: 10,
});

export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; reason: string };

export class RestartPolicy {
  readonly #options: RestartPolicyOptions;
  readonly #random: () => number;
  /** Crashes since the last stable run. */
  #inRow = 0;

  constructor(options: RestartPolicyOptions = RESTART_DEFAULTS, random: () => number = Math.random) {
    this.#options = options;
    this.#random = random;
  }

  /** A worker of this slot crashed after `uptimeMs`; decide whether and when to start the next. */
  onCrash(uptimeMs: number): RestartDecision {
    if (uptimeMs >= this.#options.stableMs) this.#inRow = 0;
    const attempt = ++this.#inRow;
    if (attempt > this.#options.maxRestarts) {
      return {
        restart: false,
        reason: `crash loop: ${attempt} crashes in a row, none after ${formatSeconds(this.#options.stableMs)} up`,
      };
    }
    return { restart: true, delayMs: Math.round(backoffDelay(this.#options, attempt, this.#random)), attempt };
  }

  /** The shortest and longest time from a first crash to the verdict, for an app that exits at once (the docs' figure). */
  crashLoopAfterMs(): { min: number; max: number } {
    let max = 0;
    for (let attempt = 1; attempt <= this.#options.maxRestarts; attempt++)
      max += backoffCeiling(this.#options, attempt);
    return { min: max / 2, max };
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
