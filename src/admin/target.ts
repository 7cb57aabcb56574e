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
  readonly options: { readonly logger: Logger };
  listeningAddress(): string | null;
  /** The latest sample, and the most recent ones. */
  latest(): unknown;
  samples(count: number): unknown[];
  instrument(on: boolean): void;
  /** A graceful shutdown, as SIGTERM starts it. */
  shutdown(reason: string, graceMs?: number): Promise<unknown>;
  /** 'sample' (each sample) and 'request' (each completed request, while instrumented) are streamed by the console. */
  on(event: 'sample' | 'request', listener: (payload: unknown) => void): unknown;
  off(event: 'sample' | 'request', listener: (payload: unknown) => void): unknown;
}
