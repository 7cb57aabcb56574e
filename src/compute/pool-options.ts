/** The pool transport's options, with their default and checks. Its definition: pool-transport.ts. */
import { availableParallelism } from 'node:os';
import { whole } from './option-checks.ts';

export interface PoolOptions {
  /** Worker threads. Default: usable CPUs − 1 (the event loop keeps one), at least 1. */
  threads?: number;
}

export interface ResolvedPoolOptions {
  threads: number;
}

export function resolvePoolOptions(options: Readonly<Record<string, unknown>>): ResolvedPoolOptions {
  return { threads: whole('threads', options.threads, Math.max(1, availableParallelism() - 1), 1) };
}
