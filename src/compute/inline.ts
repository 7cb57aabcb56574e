/**
 * The inline transport: tasks run on the caller's own event loop, one after the other, as in the talk's monolith.
 * A deadline or a cancellation can stop a call before its task starts, never during it: a synchronous task holds
 * the loop until it returns. It is here to be measured against the pool, and for tests.
 */
import { NodescaleError } from '../errors.ts';
import { abortError, callSignal, findTask, unknownTask } from './call.ts';
import type { CallOptions, Compute, ResolvedCommonOptions, TaskModule } from './contract.ts';

export async function createInlineCompute(options: ResolvedCommonOptions): Promise<Compute> {
  const { tasks } = (await import(options.tasks)) as TaskModule;
  let completed = 0;
  let failed = 0;
  let closed = false;
  return {
    transport: 'inline',
    async call<O>(task: string, input: unknown, callOptions: CallOptions = {}): Promise<O> {
      if (closed) throw new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute transport is closed');
      const run = findTask(tasks, task);
      if (run === undefined) throw unknownTask(String(task), Object.keys(tasks));
      const { signal, dispose } = callSignal(callOptions, options.deadlineMs);
      dispose(); // inline runs at once, or not at all: only a signal aborted already stops it
      if (signal.aborted) throw abortError(task, signal, callOptions.deadlineMs ?? options.deadlineMs);
      try {
        const output = (await run(input)) as O;
        completed++;
        return output;
      } catch (error) {
        failed++;
        throw new NodescaleError('NS_ERR_COMPUTE_FAILED', `task ${task} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
    stats: () => ({ transport: 'inline', threads: 0, queued: 0, completed, failed }),
    async close() {
      closed = true;
    },
  };
}
