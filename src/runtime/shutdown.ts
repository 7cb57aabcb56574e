/**
 * Graceful shutdown: readiness goes false, the server stops accepting, responses still in flight get
 * `Connection: close`, idle keep-alive sockets are closed, in-flight requests get a grace period to finish, then the
 * registered cleanup hooks run (last registered first: close what was opened last), and the process exits 0.
 * A second signal, or the grace period running out, forces the exit (1) with a message naming what was still open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger, ResolvedShutdown } from './options.ts';

export interface ShutdownTarget {
  /** Marks the runtime as shutting down (readiness false, Connection: close on what is in flight and what comes). */
  beginShutdown(reason: string): void;
  /** Stops accepting; resolves when every connection is closed. */
  closeServer(): Promise<void>;
  inFlight(): Iterable<[IncomingMessage, ServerResponse, number]>;
  inFlightCount(): number;
}

export type ShutdownHook = () => unknown;
export type ShutdownOutcome = 'clean' | 'forced';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class GracefulShutdown {
  readonly #target: ShutdownTarget;
  readonly #options: ResolvedShutdown;
  readonly #log: Logger;
  readonly #hooks: ShutdownHook[] = [];
  #running: Promise<ShutdownOutcome> | null = null;
  #forced = false;
  readonly #onSignal = (signal: NodeJS.Signals) => {
    if (this.#running !== null) this.force(`second ${signal}`);
    else void this.shutdown(signal);
  };

  constructor(target: ShutdownTarget, options: ResolvedShutdown, log: Logger) {
    this.#target = target;
    this.#options = options;
    this.#log = log;
  }

  install(): void {
    for (const signal of this.#options.signals) process.on(signal, this.#onSignal);
  }

  uninstall(): void {
    for (const signal of this.#options.signals) process.off(signal, this.#onSignal);
  }

  addHook(hook: ShutdownHook): void {
    this.#hooks.push(hook);
  }

  get started(): boolean {
    return this.#running !== null;
  }

  /** Starts (or joins) the graceful shutdown. */
  shutdown(reason: string, graceMs = this.#options.graceMs): Promise<ShutdownOutcome> {
    this.#running ??= this.#run(reason, graceMs);
    return this.#running;
  }

  async #run(reason: string, graceMs: number): Promise<ShutdownOutcome> {
    const started = Date.now();
    const deadline = started + graceMs;
    this.#log('info', 'graceful shutdown started', { reason, inFlight: this.#target.inFlightCount(), graceMs });
    this.#target.beginShutdown(reason);
    const closed = await Promise.race([this.#target.closeServer().then(() => true), sleep(graceMs).then(() => false)]);
    if (this.#forced) return 'forced';
    if (!closed) return this.force(`the grace period of ${graceMs} ms ran out`);
    for (const hook of [...this.#hooks].reverse()) {
      const left = Math.max(0, deadline - Date.now());
      try {
        const done = await Promise.race([Promise.resolve(hook()).then(() => true), sleep(left).then(() => false)]);
        if (!done) return this.force(`a cleanup hook did not finish within the grace period`);
      } catch (error) {
        this.#log('error', 'a shutdown hook failed', { error: error instanceof Error ? error.stack : String(error) });
      }
      if (this.#forced) return 'forced';
    }
    this.#log('info', 'graceful shutdown complete', { reason, ms: Date.now() - started });
    if (this.#options.exit) process.exit(0);
    return 'clean';
  }

  /** Ends now, naming what was still open. */
  force(why: string): ShutdownOutcome {
    if (this.#forced) return 'forced';
    this.#forced = true;
    const now = performance.now();
    const open = [...this.#target.inFlight()].map(
      ([req, , start]) => `${req.method} ${req.url} (${Math.round(now - start)} ms)`,
    );
    const resources = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    this.#log('error', `forced shutdown: ${why}`, { inFlight: open, activeResources: resources });
    if (this.#options.exit) process.exit(1);
    return 'forced';
  }
}
