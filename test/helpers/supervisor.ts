/** Starts `nodescale run <app>` as a child process with a unique --name, and removes what it leaves, pass or fail. */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { BIN } from './cli.ts';

export const SUPERVISED_APP = new URL('../fixtures/supervised-app.ts', import.meta.url).pathname;
export const PLAIN_APP = new URL('../fixtures/plain-app.ts', import.meta.url).pathname;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let names = 0;
const uniqueName = () => `t${process.pid}-${++names}`;

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
    env: { ...process.env, ...env },
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
