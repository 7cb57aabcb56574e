/**
 * Overload detection with hysteresis. Each sample gives a severity: the highest ratio of a measure to its threshold
 * (event-loop delay p99, utilisation, heap used ÷ limit, RSS). Shedding starts after `enterAfterSamples` samples at
 * severity ≥ 1 and stops after `exitAfterSamples` samples below `recoverRatio`, so it does not flap.
 *
 * Per request, two more limits need no sample: the in-flight limit, and the lag limit (how long the loop has gone
 * without running its timers: what the requests of the current batch have already waited). While the loop sheds (the
 * overload state, or a request shed for lag within the last second) the lag limit is `shedLagMs` (50 ms) rather than
 * `maxLagMs` (200 ms): measured at ten times a 5 ms route's capacity over 200 connections, turns of ~200 ms left
 * /healthz probes on new connections at ~420 ms (p50) with timeouts, and the accepted requests' p99 at seconds;
 * with 50 ms, probes take ~130 ms and that p99 falls below 100 ms, for the same throughput (bench/runtime.ts).
 *
 * Priorities: 'low' requests are also shed as soon as severity reaches `recoverRatio` (background work goes first);
 * 'high' ones only while severity is 2 or more (the loop is drowning, not just busy).
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ResolvedOverload } from './options.ts';
import type { RuntimeSample } from './sampler.ts';

export type OverloadReason =
  'event-loop-delay' | 'event-loop-lag' | 'event-loop-utilization' | 'heap' | 'rss' | 'in-flight';

export interface OverloadState {
  overloaded: boolean;
  severity: number;
  reasons: OverloadReason[];
  /** When the current overload began (epoch ms), or null. */
  since: number | null;
  /** How long the last overload lasted, ms, or null before the first one ended. */
  lastDurationMs: number | null;
}

export type Transition =
  { type: 'overload'; reasons: OverloadReason[] } | { type: 'recover'; durationMs: number } | null;

export class OverloadGuard {
  readonly #options: ResolvedOverload;
  #overloaded = false;
  #severity = 0;
  #reasons: OverloadReason[] = [];
  #over = 0;
  #calm = 0;
  #since: number | null = null;
  #lastDurationMs: number | null = null;
  /** When the loop last ran its timers (performance.now()), kept by a probe timer while maxLagMs is set. */
  #lastTick = performance.now();
  #probe: NodeJS.Timeout | null = null;
  /** When a request was last shed for lag (performance.now()). */
  #lagShedAt = -Infinity;
  /** The lag limit while shedding: shedLagMs when set and lower than maxLagMs. */
  readonly #shedLagMs: number;

  constructor(options: ResolvedOverload) {
    this.#options = options;
    this.#shedLagMs =
      options.shedLagMs > 0 && options.shedLagMs < options.maxLagMs ? options.shedLagMs : options.maxLagMs;
  }

  /** Starts the lag probe (only when maxLagMs is set): a timer that notes when the loop last ran timers. */
  start(): void {
    if (this.#options.maxLagMs <= 0 || this.#probe !== null) return;
    // Often enough that an idle loop never looks late (a quarter of the lower limit), and no more than 80 times a second.
    const every = Math.max(1, Math.min(25, this.#shedLagMs / 4));
    this.#lastTick = performance.now();
    this.#probe = setInterval(() => (this.#lastTick = performance.now()), every);
    this.#probe.unref();
  }

  stop(): void {
    if (this.#probe !== null) clearInterval(this.#probe);
    this.#probe = null;
  }

  get state(): OverloadState {
    return {
      overloaded: this.#overloaded,
      severity: this.#severity,
      reasons: [...this.#reasons],
      since: this.#since,
      lastDurationMs: this.#lastDurationMs,
    };
  }

  get overloaded(): boolean {
    return this.#overloaded;
  }

  /** Judges one sample; returns the transition it caused, if any. */
  observe(sample: RuntimeSample, now = Date.now()): Transition {
    const options = this.#options;
    const ratios: [OverloadReason, number][] = [];
    if (options.maxEventLoopDelayMs > 0)
      ratios.push(['event-loop-delay', sample.eventLoop.delayP99Ms / options.maxEventLoopDelayMs]);
    if (options.maxEventLoopUtilization > 0)
      ratios.push(['event-loop-utilization', sample.eventLoop.utilization / options.maxEventLoopUtilization]);
    if (options.maxHeapUsedRatio > 0)
      ratios.push(['heap', sample.memory.heapUsed / sample.memory.heapLimit / options.maxHeapUsedRatio]);
    if (options.maxRssBytes > 0) ratios.push(['rss', sample.memory.rss / options.maxRssBytes]);
    if (options.maxInFlight > 0) ratios.push(['in-flight', sample.http.inFlight / options.maxInFlight]);
    this.#severity = ratios.reduce((max, [, ratio]) => Math.max(max, ratio), 0);
    this.#reasons = ratios.filter(([, ratio]) => ratio >= 1).map(([reason]) => reason);

    if (!this.#overloaded) {
      this.#over = this.#severity >= 1 ? this.#over + 1 : 0;
      if (this.#over >= options.enterAfterSamples) {
        this.#overloaded = true;
        this.#since = now;
        this.#calm = 0;
        return { type: 'overload', reasons: this.#reasons };
      }
      return null;
    }
    this.#calm = this.#severity < options.recoverRatio ? this.#calm + 1 : 0;
    if (this.#calm >= options.exitAfterSamples) {
      this.#overloaded = false;
      this.#lastDurationMs = now - this.#since!;
      this.#since = null;
      this.#over = 0;
      return { type: 'recover', durationMs: this.#lastDurationMs };
    }
    return null;
  }

  /**
   * Whether to shed this request now; `inFlight` counts requests already in flight, `now` is performance.now() if the
   * caller has read it (0: read here when the lag limit needs it). Returns the reason or null.
   */
  shouldShed(req: IncomingMessage, inFlight: number, now = 0): OverloadReason | 'overload' | null {
    const reason = this.#wouldShed(req, inFlight, now);
    // Exemptions are asked only about requests that would be shed: the common path pays nothing for them.
    return reason !== null && this.#options.exempt(req) ? null : reason;
  }

  #wouldShed(req: IncomingMessage, inFlight: number, now: number): OverloadReason | 'overload' | null {
    const options = this.#options;
    if (options.maxInFlight > 0 && inFlight >= options.maxInFlight) return 'in-flight';
    if (options.maxLagMs > 0 && this.#probe !== null) {
      const at = now > 0 ? now : performance.now();
      const shedding = this.#overloaded || at - this.#lagShedAt < 1000;
      if (at - this.#lastTick > (shedding ? this.#shedLagMs : options.maxLagMs)) {
        this.#lagShedAt = at;
        return 'event-loop-lag';
      }
    }
    if (!this.#overloaded && this.#severity < options.recoverRatio) return null;
    const priority = options.priority === null ? 'normal' : options.priority(req);
    if (priority === 'low') return 'overload';
    if (!this.#overloaded) return null;
    if (priority === 'high' && this.#severity < 2) return null;
    return 'overload';
  }

  /** Seconds a shed client should wait: how long the last overload took to clear (or this one so far), 1 s at least. */
  retryAfterSeconds(now = Date.now()): number {
    const ms = this.#lastDurationMs ?? (this.#since === null ? 1000 : now - this.#since);
    return Math.min(this.#options.maxRetryAfterSeconds, Math.max(1, Math.ceil(ms / 1000)));
  }
}
