/**
 * When a worker is ready (readyOn): the rules of 'auto', the line that names each the first time it applies, and why a
 * worker that was not ready in time was not.
 */
import type { ReadyOn } from './options.ts';

/** What made a worker ready: its runtime, its process.send('ready'), or listening. */
export type ReadyRule = 'runtime' | 'message' | 'listening';

/** The line that names a rule of readyOn 'auto', the first time it applies. */
export const READY_RULES: Record<ReadyRule, string> = {
  runtime: 'readiness: the workers run nodescale/runtime, ready when it says so (its readiness turned true)',
  message: "readiness: a worker is ready when it calls process.send('ready')",
  listening:
    "readiness: a worker without nodescale/runtime is ready once it listens (--ready-on message waits for process.send('ready'))",
};

export function notReadyWhy(readyOn: ReadyOn, runtime: boolean): string {
  if (readyOn === 'listening') return 'it never listened';
  if (readyOn === 'message')
    return "with --ready-on message, a worker is ready when it calls process.send('ready') or its nodescale/runtime says so";
  return runtime
    ? 'its nodescale/runtime never said ready: see its readiness (readyWhen, setUnavailable)'
    : "it neither listened nor called process.send('ready')";
}
