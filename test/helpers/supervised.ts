/**
 * `nodescale run` of the supervisor tests' fixture app (test/fixtures/supervised-app.ts) in a child process, as a
 * user starts it: its workers on a free port, the addresses it announces (dashboard, metrics) collected, stopped
 * (SIGTERM, and waited for) after the test.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { listenForAnnouncements } from '../../src/ipc.ts';
import { freePort } from '../../src/servers/process.ts';
import { BIN } from './cli.ts';
import { waitUntil } from './wait.ts';

export const SUPERVISED_APP = new URL('../fixtures/supervised-app.ts', import.meta.url).pathname;

export interface Supervised {
  child: ChildProcess;
  /** What it announced, by service: 'dashboard', 'metrics'. */
  urls: Record<string, string>;
  /** The app's address. */
  app: string;
  output: () => string;
}

export async function startSupervised(
  t: TestContext,
  name: string,
  flags: string[] = [],
  env: Record<string, string> = {},
): Promise<Supervised> {
  const urls: Record<string, string> = {};
  const announcements = await listenForAnnouncements((a) => (urls[a.service] ??= a.url));
  t.after(() => announcements.close());
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'run', SUPERVISED_APP, '-w', '2', '--name', name, ...flags], {
    env: { ...process.env, ...env, ...announcements.env, APP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  await waitUntil(() => /worker\(s\) ready/.test(output) || child.exitCode !== null, `${name} is ready`, 60_000);
  assert.equal(child.exitCode, null, output);
  return { child, urls, app: `http://127.0.0.1:${port}/`, output: () => output };
}
