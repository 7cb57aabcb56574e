/**
 * nodescale/compute: CPU-bound work moved off the API's event loop, behind one small request/response interface.
 *
 *   const compute = await createCompute({ transport: 'pool', tasks: new URL('./tasks.ts', import.meta.url) });
 *   const tags = await compute.call('extract', { html, url }, { deadlineMs: 2000 });
 *
 * A task module exports `tasks`, a record of named functions (input → output, or a promise of it). Transports are
 * one file each: `inline` runs tasks on the caller's event loop (the monolith, to compare with), `pool` on a pool of
 * worker threads (piscina), `amqp` on compute services behind a RabbitMQ broker (amqp.ts; the services:
 * amqp-service.ts, `nodescale compute-worker`).
 */
import { availableParallelism } from 'node:os';
import { checkClientTls, type ClientTls } from '../client-tls.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { MAX_TIMER_MS } from '../units.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import { AMQP_DEFAULTS, brokerUrl } from './amqp-wire.ts';

export type Task<I = unknown, O = unknown> = (input: I) => O | Promise<O>;
export type TaskModule = { tasks: Record<string, Task> };

export interface CallOptions {
  /** Reject with NS_ERR_COMPUTE_TIMEOUT after this long (queued or running); a running task is cancelled. */
  deadlineMs?: number;
  /** Cancels the call: a queued task never runs, a running one is stopped (pool: its worker is replaced). */
  signal?: AbortSignal;
  /**
   * amqp: the task may safely run twice. A call in flight when the connection to the broker is lost is sent again,
   * once, when it is back (within the call's deadline), instead of failing with NS_ERR_COMPUTE_UNAVAILABLE; and a call
   * unanswered after `hedgeAfter` of its deadline is published once more (the first answer wins).
   */
  idempotent?: boolean;
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
  /** 'pool' (default), 'inline', or 'amqp' (compute services behind a RabbitMQ broker). */
  transport?: string;
  /** The module exporting `tasks`: a file URL or path (the amqp transport's services load it, not the caller). */
  tasks?: URL | string;
  /** amqp: the broker, amqp://user:pass@host:5672/vhost. */
  url?: string;
  /** amqps: this connection's TLS: the CA to trust, a client certificate and its key (PEM, as tls.connect takes). */
  tls?: ClientTls;
  /** amqp: the task queue. Default nodescale.compute. */
  queue?: string;
  /** amqp: 'quorum' (default: replicated, delivery counting) or 'classic' (faster, one node). */
  queueType?: 'quorum' | 'classic';
  /** amqp: deliveries of one task before it is dead-lettered as poison. Default 5. */
  maxDeliveries?: number;
  /** amqp: publisher confirms (a call is accepted once the broker has it). Default true. */
  confirm?: boolean;
  /** Pool: worker threads. Default: usable CPUs − 1 (the event loop keeps one), at least 1. */
  threads?: number;
  /**
   * Pool: tasks waiting for a thread, amqp: calls in flight, before calls are refused with NS_ERR_COMPUTE_QUEUE_FULL.
   * Default 256.
   */
  maxQueue?: number;
  /** The deadline of calls that give none, ms (at most 2³¹−1). Default 30 000. */
  deadlineMs?: number;
  /**
   * amqp: an idempotent call unanswered after this fraction of its deadline is published once more (a hedge: a
   * service frozen holding the first copy does not keep the call; the first answer wins). 1: never. Default 0.5.
   */
  hedgeAfter?: number;
}

export interface ResolvedComputeOptions {
  transport: string;
  /** '' for amqp when no module was given (the services load theirs). */
  tasks: string;
  threads: number;
  maxQueue: number;
  deadlineMs: number;
  url: string | null;
  tls: ClientTls | undefined;
  queue: string;
  queueType: 'quorum' | 'classic';
  maxDeliveries: number;
  confirm: boolean;
  hedgeAfter: number;
}

export const COMPUTE_DEFAULTS = Object.freeze({
  transport: 'pool',
  maxQueue: 256,
  deadlineMs: 30_000,
  hedgeAfter: 0.5,
});

type Transport = (options: ResolvedComputeOptions) => Promise<Compute>;

/** One line per transport. */
const TRANSPORTS: Record<string, () => Promise<Transport>> = {
  inline: async () => (await import('./inline.ts')).createInlineCompute,
  pool: async () => (await import('./pool.ts')).createPoolCompute,
  amqp: async () => (await import('./amqp.ts')).createAmqpCompute,
};

export const TRANSPORT_NAMES = Object.keys(TRANSPORTS);

const whole = (name: string, value: unknown, fallback: number, min: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    throw invalidOption(name, `a whole number ≥ ${min}`, value);
  return value;
};

function fraction(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value <= 1))
    throw invalidOption(name, 'a fraction of the deadline, more than 0 and at most 1 (1: never)', value);
  return value;
}

/** A deadline, ms: a whole number from 1 to 2³¹−1 (a longer timer would fire at once). */
export function deadline(name: string, value: unknown, fallback: number): number {
  const ms = whole(name, value, fallback, 1);
  if (ms > MAX_TIMER_MS) throw invalidOption(name, `a deadline of at most ${MAX_TIMER_MS} ms (about 24.8 days)`, value);
  return ms;
}

export function resolveComputeOptions(options: ComputeOptions): ResolvedComputeOptions {
  const transport = options.transport ?? COMPUTE_DEFAULTS.transport;
  if (!(transport in TRANSPORTS))
    throw invalidOption(
      'transport',
      `${TRANSPORT_NAMES.slice(0, -1).join(', ')} or ${TRANSPORT_NAMES.at(-1)}`,
      transport,
    );
  const amqp = transport === 'amqp';
  const tasks = options.tasks instanceof URL ? options.tasks.href : (options.tasks ?? (amqp ? '' : undefined));
  if (typeof tasks !== 'string' || (tasks === '' && !amqp))
    throw invalidOption('tasks', 'the URL or path of a module exporting tasks', options.tasks);
  if (amqp && options.url === undefined)
    throw invalidOption('url', 'the broker URL (amqp://…) with the amqp transport', undefined);
  const queueType = options.queueType ?? AMQP_DEFAULTS.queueType;
  if (queueType !== 'quorum' && queueType !== 'classic')
    throw invalidOption('queueType', 'quorum or classic', queueType);
  const queue = options.queue ?? AMQP_DEFAULTS.queue;
  if (typeof queue !== 'string' || !/^[\w.:-]{1,200}$/.test(queue) || queue.startsWith('amq.'))
    throw invalidOption(
      'queue',
      'a queue name of letters, digits and . _ : - (not amq.…, the broker keeps those)',
      queue,
    );
  if (options.confirm !== undefined && typeof options.confirm !== 'boolean')
    throw invalidOption('confirm', 'a boolean', options.confirm);
  return {
    transport,
    tasks: tasks === '' || tasks.includes(':') ? tasks : new URL(tasks, `file://${process.cwd()}/`).href,
    threads: whole('threads', options.threads, Math.max(1, availableParallelism() - 1), 1),
    maxQueue: whole('maxQueue', options.maxQueue, COMPUTE_DEFAULTS.maxQueue, 0),
    deadlineMs: deadline('deadlineMs', options.deadlineMs, COMPUTE_DEFAULTS.deadlineMs),
    url: options.url === undefined ? null : brokerUrl('url', options.url),
    tls: options.url === undefined ? undefined : checkClientTls('tls', options.tls, options.url),
    queue,
    queueType,
    maxDeliveries: whole('maxDeliveries', options.maxDeliveries, AMQP_DEFAULTS.maxDeliveries, 1),
    confirm: options.confirm ?? AMQP_DEFAULTS.confirm,
    hedgeAfter: fraction('hedgeAfter', options.hedgeAfter, COMPUTE_DEFAULTS.hedgeAfter),
  };
}

/** Every option createCompute knows: any other name is a typo, refused with the nearest of these. */
const OPTION_NAMES = [
  'transport',
  'tasks',
  'url',
  'tls',
  'queue',
  'queueType',
  'maxDeliveries',
  'confirm',
  'threads',
  'maxQueue',
  'deadlineMs',
  'hedgeAfter',
] as const satisfies readonly (keyof ComputeOptions)[];

export async function createCompute(options: ComputeOptions): Promise<Compute> {
  refuseUnknownOptions(options, OPTION_NAMES);
  const resolved = resolveComputeOptions(options);
  return (await TRANSPORTS[resolved.transport]!())(resolved);
}

/** The signal of one call: its deadline and the caller's signal, whichever comes first. */
export interface CallSignal {
  signal: AbortSignal;
  /** Clears the deadline's timer and the listener on the caller's signal: call it when the call settles. */
  dispose(): void;
}

/**
 * The signal of one call: its deadline and the caller's signal, whichever comes first. One AbortController and one
 * timer, cleared by dispose(): AbortSignal.timeout() and AbortSignal.any() cost several times more per call (they
 * showed in the profile of the amqp transport at 10 000 calls/s).
 */
export function callSignal(options: CallOptions, fallbackDeadlineMs: number): CallSignal {
  // A deadline that cannot be honoured is refused (a longer timer would fire at once); 0 or less times out at once.
  if (options.deadlineMs !== undefined && !(options.deadlineMs <= MAX_TIMER_MS))
    throw invalidOption('deadlineMs', `a deadline of at most ${MAX_TIMER_MS} ms (about 24.8 days)`, options.deadlineMs);
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException('the deadline passed', 'TimeoutError')),
    options.deadlineMs ?? fallbackDeadlineMs,
  );
  timer.unref();
  const outer = options.signal;
  const follow = () => controller.abort(outer!.reason);
  if (outer?.aborted) follow();
  else outer?.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', follow);
    },
  };
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
  const shown = task.length > MAX_TASK_NAME ? `${task.slice(0, MAX_TASK_NAME)}…` : task;
  return new NodescaleError(
    'NS_ERR_COMPUTE_FAILED',
    `no task named ${JSON.stringify(shown)}; the tasks are ${names.join(', ')}`,
  );
}

/** The longest task name: a longer one is no task (names come from messages of other processes). */
export const MAX_TASK_NAME = 200;

/**
 * The task of that name: an own property of the module's `tasks` that is a function, never one inherited from
 * Object.prototype (`constructor`, `toString`), since the name may come from another process.
 */
export function findTask(tasks: Record<string, Task>, task: unknown): Task | undefined {
  if (typeof task !== 'string' || task.length > MAX_TASK_NAME || !Object.hasOwn(tasks, task)) return undefined;
  const fn = tasks[task];
  return typeof fn === 'function' ? fn : undefined;
}
