/**
 * nodescale/compute: CPU-bound work moved off the API's event loop, behind one small request/response interface.
 *
 *   const compute = await createCompute({ transport: 'pool', tasks: new URL('./tasks.ts', import.meta.url) });
 *   const tags = await compute.call('extract', { html, url }, { deadlineMs: 2000 });
 *
 * A task module exports `tasks`, a record of named functions (input → output, or a promise of it). Transports are
 * one file each: `inline` runs tasks on the caller's event loop (the monolith, to compare with), `pool` on a pool of
 * worker threads (piscina). A broker transport (RabbitMQ) is one more file and one more line in TRANSPORTS.
 */
import { availableParallelism } from 'node:os';
import { invalidOption, NodescaleError } from '../errors.ts';

export type Task<I = unknown, O = unknown> = (input: I) => O | Promise<O>;
export type TaskModule = { tasks: Record<string, Task> };

export interface CallOptions {
  /** Reject with NS_ERR_COMPUTE_TIMEOUT after this long (queued or running); a running task is cancelled. */
  deadlineMs?: number;
  /** Cancels the call: a queued task never runs, a running one is stopped (pool: its worker is replaced). */
  signal?: AbortSignal;
}

export interface ComputeStats {
  transport: string;
  threads: number;
  queued: number;
  completed: number;
  failed: number;
}

export interface Compute {
  readonly transport: string;
  call<O = unknown>(task: string, input: unknown, options?: CallOptions): Promise<O>;
  stats(): ComputeStats;
  /** Finishes what was accepted, then stops; later calls get NS_ERR_COMPUTE_CLOSED. */
  close(): Promise<void>;
}

export interface ComputeOptions {
  /** 'pool' (default) or 'inline'. */
  transport?: string;
  /** The module exporting `tasks`: a file URL or path. */
  tasks: URL | string;
  /** Pool: worker threads. Default: usable CPUs − 1 (the event loop keeps one), at least 1. */
  threads?: number;
  /** Pool: tasks waiting for a thread before calls are refused with NS_ERR_COMPUTE_QUEUE_FULL. Default 256. */
  maxQueue?: number;
  /** The deadline of calls that give none, ms. Default 30 000. */
  deadlineMs?: number;
}

export interface ResolvedComputeOptions {
  transport: string;
  tasks: string;
  threads: number;
  maxQueue: number;
  deadlineMs: number;
}

export const COMPUTE_DEFAULTS = Object.freeze({ transport: 'pool', maxQueue: 256, deadlineMs: 30_000 });

type Transport = (options: ResolvedComputeOptions) => Promise<Compute>;

/** One line per transport. */
const TRANSPORTS: Record<string, () => Promise<Transport>> = {
  inline: async () => (await import('./inline.ts')).createInlineCompute,
  pool: async () => (await import('./pool.ts')).createPoolCompute,
};

export const TRANSPORT_NAMES = Object.keys(TRANSPORTS);

const whole = (name: string, value: unknown, fallback: number, min: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    throw invalidOption(name, `a whole number ≥ ${min}`, value);
  return value;
};

export function resolveComputeOptions(options: ComputeOptions): ResolvedComputeOptions {
  const transport = options.transport ?? COMPUTE_DEFAULTS.transport;
  if (!(transport in TRANSPORTS)) throw invalidOption('transport', TRANSPORT_NAMES.join(' or '), transport);
  const tasks = options.tasks instanceof URL ? options.tasks.href : options.tasks;
  if (typeof tasks !== 'string' || tasks === '')
    throw invalidOption('tasks', 'the URL or path of a module exporting tasks', options.tasks);
  return {
    transport,
    tasks: tasks.includes(':') ? tasks : new URL(tasks, `file://${process.cwd()}/`).href,
    threads: whole('threads', options.threads, Math.max(1, availableParallelism() - 1), 1),
    maxQueue: whole('maxQueue', options.maxQueue, COMPUTE_DEFAULTS.maxQueue, 0),
    deadlineMs: whole('deadlineMs', options.deadlineMs, COMPUTE_DEFAULTS.deadlineMs, 1),
  };
}

export async function createCompute(options: ComputeOptions): Promise<Compute> {
  const resolved = resolveComputeOptions(options);
  return (await TRANSPORTS[resolved.transport]!())(resolved);
}

/** The signal of one call: its deadline and the caller's signal, whichever comes first. */
export function callSignal(options: CallOptions, fallbackDeadlineMs: number): AbortSignal {
  const deadline = AbortSignal.timeout(options.deadlineMs ?? fallbackDeadlineMs);
  return options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
}

/** The error a call rejects with when its signal fired. */
export function abortError(task: string, signal: AbortSignal, deadlineMs: number): NodescaleError {
  const reason = signal.reason as Error | undefined;
  if (reason?.name === 'TimeoutError')
    return new NodescaleError('NS_ERR_COMPUTE_TIMEOUT', `task ${task} did not finish within ${deadlineMs} ms`, {
      retryable: true,
    });
  return new NodescaleError(
    'NS_ERR_COMPUTE_FAILED',
    `task ${task} was cancelled${reason?.message ? `: ${reason.message}` : ''}`,
  );
}

export function unknownTask(task: string, names: readonly string[]): NodescaleError {
  return new NodescaleError(
    'NS_ERR_COMPUTE_FAILED',
    `no task named ${JSON.stringify(task)}; the tasks are ${names.join(', ')}`,
  );
}
