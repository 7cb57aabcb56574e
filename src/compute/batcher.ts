/**
 * Small tasks, batched on their way to the threads: what a compute service (any transport's) uses to run the tasks
 * it takes. Nothing here knows where the tasks came from.
 */
import { NodescaleError } from '../errors.ts';
import { callSignal } from './call.ts';
import type { PoolCompute } from './pool.ts';
import type { BatchItem } from './pool-worker.ts';

/**
 * Tasks delivered in one turn of the event loop go to the threads together, in shares (one hop between threads per
 * share instead of one per task: for tasks of microseconds the hop costs more than the broker's round trip). Only
 * small tasks are batched: while tasks take a millisecond or more on average, each goes alone, so that a caller never
 * waits for the tasks batched with its own. A share whose thread fails is run again task by task, so that a task that
 * crashes its thread fails alone, as in the pool.
 */
export function batcher(pool: PoolCompute, threads: number) {
  interface Waiting {
    item: BatchItem;
    signal: AbortSignal;
    resolve(output: unknown): void;
    reject(error: Error): void;
  }
  const MAX_SHARE = 16;
  let waiting: Waiting[] = [];
  /** Mean milliseconds a task takes, recent tasks weighing most. */
  let meanTaskMs = 0;
  const observe = (started: number, tasks: number) =>
    (meanTaskMs = meanTaskMs * 0.8 + ((performance.now() - started) / tasks) * 0.2);
  const alone = (w: Waiting) => {
    const started = performance.now();
    return pool
      .call(w.item.task, w.item.input, { deadlineMs: Math.max(1, w.item.deadline - Date.now()), signal: w.signal })
      .then(w.resolve, w.reject)
      .finally(() => observe(started, 1));
  };
  const runShare = async (share: Waiting[]) => {
    if (share.length === 1) return alone(share[0]!);
    // The share is cancelled when its tasks are (all together, when their channel is lost), and stopped at the last
    // of their deadlines: a task that never ends does not hold its thread past them.
    const lastDeadline = Math.max(...share.map((w) => w.item.deadline));
    const { signal, dispose } = callSignal({ signal: share[0]!.signal }, Math.max(1, lastDeadline - Date.now()));
    const started = performance.now();
    try {
      const results = await pool.runBatch(
        share.map((w) => w.item),
        signal,
      );
      results.forEach((result, i) => {
        const w = share[i]!;
        if (result.ok) w.resolve(result.output);
        else {
          const code = result.expired ? 'NS_ERR_COMPUTE_TIMEOUT' : 'NS_ERR_COMPUTE_FAILED';
          w.reject(new NodescaleError(code, `task ${w.item.task} failed: ${result.message}`));
        }
      });
      observe(started, share.length);
    } catch (error) {
      if (signal.aborted) {
        const reason = share[0]!.signal.aborted
          ? (error as Error)
          : new NodescaleError('NS_ERR_COMPUTE_TIMEOUT', 'the tasks did not finish before their deadlines');
        return share.forEach((w) => w.reject(reason));
      }
      await Promise.all(share.map(alone));
    } finally {
      dispose();
    }
  };
  const flush = () => {
    const all = waiting;
    waiting = [];
    const size = meanTaskMs < 1 ? Math.min(MAX_SHARE, Math.ceil(all.length / threads)) : 1;
    for (let i = 0; i < all.length; i += size) void runShare(all.slice(i, i + size));
  };
  return (task: string, input: unknown, deadline: number, signal: AbortSignal): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ item: { task, input, deadline }, signal, resolve, reject });
    });
}
