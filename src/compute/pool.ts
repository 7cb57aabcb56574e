/**
 * The pool transport: tasks run on a pool of worker threads (piscina), off the caller's event loop.
 * - A bounded queue: past `maxQueue` waiting tasks, a call is refused at once (NS_ERR_COMPUTE_QUEUE_FULL) instead of
 *   queueing without bound while its caller times out.
 * - Per-call deadline and cancellation: a queued task is dropped; a running one is stopped by terminating its thread,
 *   which piscina replaces.
 * - A thread that crashes (throws outside the task, exits) fails only the task it was running; piscina starts a new
 *   one, and the tasks queued behind it run.
 */
import { Piscina } from 'piscina';
import { NodescaleError } from '../errors.ts';
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
    maxQueue: options.maxQueue,
  });
  let failed = 0;
  let closed = false;
  const queueFull = () =>
    new NodescaleError(
      'NS_ERR_COMPUTE_QUEUE_FULL',
      `the compute pool's queue is full (${options.maxQueue} tasks waiting)`,
    );
  return {
    transport: 'pool',
    async call<O>(task: string, input: unknown, callOptions: CallOptions = {}): Promise<O> {
      if (closed) throw new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute pool is closed');
      const deadlineMs = callOptions.deadlineMs ?? options.deadlineMs;
      // Refused here, before a deadline timer exists; piscina's own refusal (below) covers maxQueue 0.
      if (pool.queueSize > 0 && pool.queueSize >= options.maxQueue) throw queueFull();
      const { signal, dispose } = callSignal(callOptions, deadlineMs);
      try {
        return (await pool.run({ task, input }, { signal })) as O;
      } catch (error) {
        failed++;
        if (signal.aborted) throw abortError(task, signal, deadlineMs);
        const message = (error as Error).message;
        if (message === 'Task queue is at limit') throw queueFull();
        throw new NodescaleError('NS_ERR_COMPUTE_FAILED', `task ${task} failed: ${message}`, { cause: error });
      } finally {
        dispose();
      }
    },
    runBatch: async (batch, signal) => (await pool.run({ batch }, { signal })) as BatchResult[],
    taskNames: async () => (await pool.run({ names: true })) as string[],
    stats: () => ({
      transport: 'pool',
      threads: pool.threads.length,
      queued: pool.queueSize,
      completed: pool.completed,
      failed,
    }),
    async close() {
      closed = true;
      await pool.close();
    },
  };
}
