/**
 * A thread of the compute pool: loads the task module once, then runs one task per message.
 */
import { workerData } from 'node:worker_threads';
import { unknownTask, type TaskModule } from './compute.ts';

const { tasks } = (await import((workerData as { tasks: string }).tasks)) as TaskModule;

export default function runTask({ task, input }: { task: string; input: unknown }): unknown {
  const run = tasks[task];
  if (run === undefined) throw unknownTask(task, Object.keys(tasks));
  return run(input);
}
