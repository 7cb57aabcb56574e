/**
 * The pool transport: tasks run on a pool of worker threads (piscina), off the caller's event loop.
 * - A bounded queue: past `maxQueue` waiting tasks, a call is refused at once (NS_ERR_COMPUTE_QUEUE_FULL) instead of
 *   queueing without bound while its caller times out.
 * - Per-call deadline and cancellation: a queued task is dropped; a running one is stopped by terminating its thread,
 *   which piscina replaces.
 * - A thread that crashes (throws outside the task, exits) fails only the task it was running; piscina starts a new
 *   one, and the tasks queued behind it run.
 * - First in, first run: no task waits behind newer ones (a queue of ours, in front of piscina's).
 */
import { Piscina } from 'piscina';
import { isNodescaleError, NodescaleError } from '../errors.ts';
import { sibling } from '../module-file.ts';
import { abortError, callSignal } from './call.ts';
import type { CallOptions, Compute, ResolvedCommonOptions } from './contract.ts';
import type { ResolvedPoolOptions } from './pool-options.ts';
import type { BatchItem, BatchResult } from './pool-worker.ts';

const WORKER = sibling('./pool-worker', import.meta.url);

export interface PoolCompute extends Compute {
  /**
   * Runs several tasks on one thread, in order, in one hop between threads (the compute service's batches). Each
   * result is the task's own; the promise rejects only when the thread itself fails or `signal` aborts.
   */
  runBatch(batch: BatchItem[], signal: AbortSignal): Promise<BatchResult[]>;
  /** The names of the module's tasks, as a thread loaded it. */
  taskNames(): Promise<string[]>;
}

export async function createPoolCompute(options: ResolvedCommonOptions & ResolvedPoolOptions): Promise<PoolCompute> {
  const pool = new Piscina({
    filename: WORKER.href,
    workerData: { tasks: options.tasks },
    minThreads: options.threads,
    maxThreads: options.threads,
    // minThreads = maxThreads: threads stay, idle or not. Loading a task module (an NLP model, say) is what a
    // thread costs.
    // piscina is never handed more tasks than it has threads (below): what waits, waits in our queue.
    maxQueue: options.threads,
  });
  let failed = 0;
  let closed = false;
  /**
   * The tasks waiting for a thread, first come first run. piscina's own queue is not that: a task with an
   * AbortSignal (every one of ours) that it cannot hand to a busy thread goes to the back, and a task submitted as a
   * thread frees up can go ahead of those waiting; under a steady stream one task was passed over by newer ones
   * again and again, until its deadline (60 s for a 300 ms task in the lab's compute tier).
   */
  const waiting: { start(): void; signal: AbortSignal | undefined; cancel(reason: unknown): void }[] = [];
  let running = 0;
  const queueFull = () =>
    new NodescaleError(
      'NS_ERR_COMPUTE_QUEUE_FULL',
      `the compute pool's queue is full (${options.maxQueue} tasks waiting)`,
    );
  const admit = () => {
    while (running < options.threads && waiting.length > 0) waiting.shift()!.start();
  };
  /** Runs `payload` on a thread once one is free and every task that came before it has started. */
  const run = (payload: object, signal?: AbortSignal): Promise<unknown> => {
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    if (running >= options.threads && waiting.length >= options.maxQueue) return Promise.reject(queueFull());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = waiting.indexOf(entry);
        if (at !== -1) waiting.splice(at, 1);
        reject(new AbortError(signal!.reason));
      };
      const entry = {
        signal,
        cancel: reject,
        start() {
          signal?.removeEventListener('abort', onAbort);
          running++;
          pool
            .run(payload, signal === undefined ? {} : { signal })
            .then(resolve, reject)
            .finally(() => {
              running--;
              admit();
            });
        },
      };
      if (running < options.threads && waiting.length === 0) return entry.start();
      signal?.addEventListener('abort', onAbort, { once: true });
      waiting.push(entry);
    });
  };
  return {
    transport: 'pool',
    async call<O>(task: string, input: unknown, callOptions: CallOptions = {}): Promise<O> {
      if (closed) throw new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute pool is closed');
      const deadlineMs = callOptions.deadlineMs ?? options.deadlineMs;
      // Refused here, before a deadline timer exists.
      if (running >= options.threads && waiting.length >= options.maxQueue) throw queueFull();
      const { signal, dispose } = callSignal(callOptions, deadlineMs);
      try {
        return (await run({ task, input }, signal)) as O;
      } catch (error) {
        failed++;
        if (signal.aborted) throw abortError(task, signal, deadlineMs);
        if (isNodescaleError(error)) throw error;
        const message = (error as Error).message;
        throw new NodescaleError('NS_ERR_COMPUTE_FAILED', `task ${task} failed: ${message}`, { cause: error });
      } finally {
        dispose();
      }
    },
    runBatch: async (batch, signal) => (await run({ batch }, signal)) as BatchResult[],
    taskNames: async () => (await run({ names: true })) as string[],
    stats: () => ({
      transport: 'pool',
      threads: pool.threads.length,
      queued: waiting.length,
      completed: pool.completed,
      failed,
    }),
    async close() {
      closed = true;
      for (const entry of waiting.splice(0))
        entry.cancel(new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute pool was closed'));
      await pool.close();
    },
  };
}

/** What a task cancelled before it started rejects with: what piscina's own cancellation gives. */
class AbortError extends Error {
  constructor(reason: unknown) {
    super('The task has been aborted', { cause: reason });
    this.name = 'AbortError';
  }
}
