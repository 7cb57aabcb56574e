/**
 * What the admin console needs of the process it serves: the runtime, seen through this small interface, so that
 * the console does not import the runtime (which it would be a cycle: the runtime's adapters open the console).
 * `Runtime` (runtime/runtime.ts) satisfies it; protect/console.ts wires the two.
 */
import type { Logger } from '../logger.ts';

export interface ConsoleTarget {
  /** 'ready', or why not. */
  readonly readiness: string;
  readonly instrumented: boolean;
  /** The overload guard's state (null when shedding is off). */
  readonly overload: unknown;
  readonly inFlightCount: number;
  readonly options: { readonly logger: Logger; readonly stall: unknown };
  listeningAddress(): string | null;
  /** The latest sample, and the most recent ones. */
  latest(): unknown;
  samples(count: number): unknown[];
  instrument(on: boolean): void;
  /** The last stalls of the event loop (stall capture on), oldest first. */
  recentStalls(): unknown[];
  /** A graceful shutdown, as SIGTERM starts it. */
  shutdown(reason: string, graceMs?: number): Promise<unknown>;
  /**
   * 'sample' (each sample), 'request' (each completed request, while instrumented) and 'stall' (each stall, capture
   * on) are streamed by the console.
   */
  on(event: 'sample' | 'request' | 'stall', listener: (payload: unknown) => void): unknown;
  off(event: 'sample' | 'request' | 'stall', listener: (payload: unknown) => void): unknown;
}
