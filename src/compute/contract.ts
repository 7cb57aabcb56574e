/**
 * What a compute transport is: to its callers, a `Compute` (call, stats, close); to the core, a `TransportDefinition`
 * (its own options, with their defaults and checks, and the implementation, loaded on first use). The core
 * (compute.ts) resolves the options every transport shares and asks the registry (transports.ts) for the rest, so a
 * new transport is new files and one line in the registry, never a switch.
 */
export type Task<I = unknown, O = unknown> = (input: I) => O | Promise<O>;
export type TaskModule = { tasks: Record<string, Task> };

export interface CallOptions {
  /** Reject with NS_ERR_COMPUTE_TIMEOUT after this long (queued or running); a running task is cancelled. */
  deadlineMs?: number;
  /** Cancels the call: a queued task never runs, a running one is stopped (pool: its worker is replaced). */
  signal?: AbortSignal;
  /**
   * The task may safely run twice. amqp: a call in flight when the connection to the broker is lost is sent again,
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
  /** amqp: the broker node this client is connected to (its URL without the password); null while it is not. */
  broker?: string | null;
  /** amqp: connections opened to the broker since the start (the first, then each reconnection). */
  connections?: number;
  /** amqp: idempotent calls waiting for the next connection, to be sent on it again. */
  awaitingResend?: number;
}

export interface Compute {
  readonly transport: string;
  call<O = unknown>(task: string, input: unknown, options?: CallOptions): Promise<O>;
  stats(): ComputeStats;
  /** Finishes what was accepted, then stops; later calls get NS_ERR_COMPUTE_CLOSED. */
  close(): Promise<void>;
}

/** The options every transport takes. */
export interface CommonComputeOptions {
  /** 'pool' (default), 'inline', or 'amqp' (compute services behind a RabbitMQ broker): TRANSPORT_NAMES. */
  transport?: string;
  /** The module exporting `tasks`: a file URL or path (the amqp transport's services load it, not the caller). */
  tasks?: URL | string;
  /**
   * Pool: tasks waiting for a thread, amqp: calls in flight, before calls are refused with NS_ERR_COMPUTE_QUEUE_FULL.
   * Default 256.
   */
  maxQueue?: number;
  /** The deadline of calls that give none, ms (at most 2³¹−1). Default 30 000. */
  deadlineMs?: number;
  /**
   * An idempotent call unanswered after this fraction of its deadline is sent once more (a hedge: a service frozen
   * holding the first copy does not keep the call; the first answer wins). 1: never. Default 0.5. Transports whose
   * tasks run in this process (pool, inline) never need one.
   */
  hedgeAfter?: number;
}

export interface ResolvedCommonOptions {
  transport: string;
  /** '' when the transport's tasks run elsewhere and no module was given (amqp: the services load theirs). */
  tasks: string;
  maxQueue: number;
  deadlineMs: number;
  hedgeAfter: number;
}

export interface TransportDefinition<Own extends object = object> {
  readonly name: string;
  /** Its own option names, beside the common ones: createCompute refuses any other, naming the nearest. */
  readonly optionNames: readonly string[];
  /** Whether the caller's process runs the tasks (and so needs `tasks`); amqp's services load theirs. */
  readonly runsTasksHere: boolean;
  /** Checks its own options and fills in their defaults; a bad value is NS_ERR_INVALID_OPTION naming the option. */
  resolve(options: Readonly<Record<string, unknown>>): Own;
  /** The implementation, loaded on first use (with its dependencies: piscina, amqplib). */
  load(): Promise<(options: ResolvedCommonOptions & Own) => Promise<Compute>>;
  /**
   * The service side, for a transport whose tasks run in other processes (`nodescale compute-worker`; service.ts):
   * its own option names beside the ones every service takes, and the module that exports `startService`. A URL,
   * not an import: the service side (and its dependencies, prom-client) is no part of what the caller's side loads.
   */
  readonly service?: { readonly optionNames: readonly string[]; readonly module: URL };
}
