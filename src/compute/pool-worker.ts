/**
 * A thread of the compute pool: loads the task module once, then runs one task per message — or a batch of them
 * (the compute service hands a thread the tasks that arrived together: one hop between threads for several tasks).
 */
import { workerData } from 'node:worker_threads';
import { findTask, unknownTask } from './call.ts';
import type { TaskModule } from './contract.ts';

const { tasks } = (await import((workerData as { tasks: string }).tasks)) as TaskModule;

export interface BatchItem {
  task: string;
  input: unknown;
  /** Epoch ms: an item whose deadline has passed when its turn comes is not run. */
  deadline: number;
}

export type BatchResult = { ok: true; output: unknown } | { ok: false; expired: boolean; message: string };

function run(task: string, input: unknown): unknown {
  const fn = findTask(tasks, task);
  if (fn === undefined) throw unknownTask(String(task), Object.keys(tasks));
  return fn(input);
}

async function runBatch(batch: BatchItem[]): Promise<BatchResult[]> {
  const results: BatchResult[] = [];
  for (const { task, input, deadline } of batch) {
    if (Date.now() >= deadline) {
      results.push({ ok: false, expired: true, message: `task ${task} was not started: its deadline had passed` });
      continue;
    }
    try {
      results.push({ ok: true, output: await run(task, input) });
    } catch (error) {
      results.push({ ok: false, expired: false, message: (error as Error).message });
    }
  }
  return results;
}

export default function runTask(
  message: { task: string; input: unknown } | { batch: BatchItem[] } | { names: true },
): unknown {
  if ('names' in message) return Object.keys(tasks).filter((name) => findTask(tasks, name) !== undefined);
  return 'batch' in message ? runBatch(message.batch) : run(message.task, message.input);
}
