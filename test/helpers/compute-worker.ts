/**
 * `nodescale compute-worker` as a child process, for the tests of the amqp transport: started, waited for until it
 * consumes, and killed after the test if it still runs.
 */
import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { BIN } from './cli.ts';
import { waitUntil } from './wait.ts';

export interface Worker {
  pid: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export const COMPUTE_TASKS = new URL('../fixtures/compute-tasks.ts', import.meta.url).pathname;

export async function startWorker(
  t: TestContext,
  /** The broker's URL (given as --broker), or the flags that give it (--broker-file FILE). */
  broker: string | string[],
  args: string[] = [],
  tasks = COMPUTE_TASKS,
  env: Record<string, string> = {},
): Promise<Worker> {
  const child = spawn(
    process.execPath,
    [BIN, 'compute-worker', tasks, ...(typeof broker === 'string' ? ['--broker', broker] : broker), ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    },
  );
  let err = '';
  child.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT'); // a test may have frozen it
      child.kill('SIGKILL');
    }
  });
  let gone = false;
  void exited.then(() => (gone = true));
  await waitUntil(() => gone || /compute-worker: consuming/.test(err), 'the compute worker consumes', 60_000);
  if (gone) throw new Error(`compute-worker exited before consuming: ${err}`);
  return { pid: child.pid!, stderr: () => err, exited, kill: (signal = 'SIGTERM') => child.kill(signal) };
}
