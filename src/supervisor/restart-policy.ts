/**
 * When to restart a crashed worker: exponential backoff with full jitter (the delay doubles with each crash in a row,
 * from `initialMs` up to `maxMs`, and a random share of it is taken so that workers do not restart in lockstep), reset
 * once a worker has stayed up for `stableMs`. A crash loop, `maxRestarts` crashes within `windowMs`, stops the
 * restarting: a process that cannot start is reported, not respawned forever (forever's and pm2's spinning CPU).
 */
export interface RestartPolicyOptions {
  initialMs: number;
  maxMs: number;
  stableMs: number;
  maxRestarts: number;
  windowMs: number;
}

export const RESTART_DEFAULTS: Readonly<RestartPolicyOptions> = Object.freeze({
  initialMs: 100,
  maxMs: 30_000,
  stableMs: 60_000,
  maxRestarts: 10,
  windowMs: 60_000,
});

export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; reason: string };

export class RestartPolicy {
  readonly #o: RestartPolicyOptions;
  readonly #random: () => number;
  #consecutive = 0;
  #crashes: number[] = [];

  constructor(options: RestartPolicyOptions = RESTART_DEFAULTS, random: () => number = Math.random) {
    this.#o = options;
    this.#random = random;
  }

  /** A worker of this slot crashed after `uptimeMs`; decide whether and when to start the next. */
  onCrash(uptimeMs: number, now = Date.now()): RestartDecision {
    if (uptimeMs >= this.#o.stableMs) this.#consecutive = 0;
    this.#crashes = this.#crashes.filter((t) => t > now - this.#o.windowMs);
    this.#crashes.push(now);
    if (this.#crashes.length > this.#o.maxRestarts) {
      return { restart: false, reason: `crash loop: ${this.#crashes.length} crashes within ${Math.round(this.#o.windowMs / 1000)} s` };
    }
    const attempt = ++this.#consecutive;
    const ceiling = Math.min(this.#o.maxMs, this.#o.initialMs * 2 ** (attempt - 1));
    // Full jitter, but never less than half the ceiling: the delay still grows with each crash.
    return { restart: true, delayMs: Math.round(ceiling / 2 + (this.#random() * ceiling) / 2), attempt };
  }
}
