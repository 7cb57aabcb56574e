/** Starts `nodescale run <app>` as a child process with a unique --name, and removes what it leaves, pass or fail. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { BIN } from './cli.ts';

export const SUPERVISED_APP = new URL('../fixtures/supervised-app.ts', import.meta.url).pathname;
export const PLAIN_APP = new URL('../fixtures/plain-app.ts', import.meta.url).pathname;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let names = 0;
const uniqueName = () => `t${process.pid}-${++names}`;

const RUN_MARKER = 'NODESCALE_TEST_RUN';

/**
 * The pids of every process started by one run (supervisor, workers, their children), found by the marker in
 * their environment: test files run at once, and a pattern on the command line would see the others' apps.
 */
export function processesOf(name: string): number[] {
  const needle = `\0${RUN_MARKER}=${name}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (`\0${readFileSync(`/proc/${entry}/environ`, 'latin1')}`.includes(needle)) found.push(Number(entry));
    } catch {
      // Gone in between, or not ours to read.
    }
  }
  return found;
}

export interface Run {
  name: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

export function startRun(
  t: TestContext,
  args: string[],
  env: Record<string, string> = {},
  app: string = SUPERVISED_APP,
): Run {
  const name = uniqueName();
  const child = spawn(process.execPath, [BIN, 'run', app, '--name', name, ...args], {
    // Its processes carry the run's name in their environment: tests find them apart from other files' runs.
    env: { ...process.env, ...env, [RUN_MARKER]: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr.on('data', (c) => (err += c));
  child.stdout.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    // A supervisor killed by the test leaves its control socket: nothing of a test is left behind, pass or fail.
    rmSync(defaultControlPath(name), { force: true });
    rmSync(`${defaultControlPath(name)}.pid`, { force: true });
  });
  return {
    name,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal) => child.kill(signal),
    async waitFor(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(err);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`no ${pattern} in: ${err.slice(-2000)}`);
        await sleep(50);
      }
    },
  };
}
