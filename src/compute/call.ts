/**
 * What every transport does with one call: its signal (deadline and the caller's signal), the error it rejects with
 * when that signal fires, and the lookup of a task by a name that may come from another process.
 */
import { invalidOption, NodescaleError } from '../errors.ts';
import { MAX_TIMER_MS } from '../units.ts';
import type { CallOptions, Task } from './contract.ts';

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
    return new NodescaleError('NS_ERR_COMPUTE_TIMEOUT', `task ${task} did not finish within ${deadlineMs} ms`);
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
