/**
 * Runs a fixture server in a child process: waits for its "listening <url>" line, collects its JSON event lines,
 * and kills it after the test if it is still running.
 */
import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

export interface Child {
  url: string;
  pid: number;
  /** Parsed JSON lines printed so far. */
  events: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  waitFor(predicate: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves once `count` events match (and `predicate` counts from the start of the run). */
  waitForCount(
    predicate: (event: Record<string, unknown>) => boolean,
    count: number,
    timeoutMs?: number,
  ): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const FIXTURES = new URL('../fixtures/', import.meta.url);

export function startFixture(
  t: TestContext,
  name: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  appArgs: string[] = [],
): Promise<Child> {
  const child = spawn(process.execPath, [...nodeArgs, new URL(name, FIXTURES).pathname, ...appArgs], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const events: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  child.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const listening = /^listening (\S+)/.exec(line);
        if (listening) {
          resolve({
            url: listening[1]!,
            pid: child.pid!,
            events,
            stdout: () => out,
            stderr: () => err,
            exited,
            kill: (signal = 'SIGTERM') => child.kill(signal),
            waitForCount(predicate, count, timeoutMs = 20_000) {
              return new Promise((ok, fail) => {
                const check = () => {
                  if (events.filter(predicate).length < count) return;
                  waiters.delete(check);
                  clearTimeout(timer);
                  ok();
                };
                const timer = setTimeout(() => {
                  waiters.delete(check);
                  fail(
                    new Error(
                      `fewer than ${count} matching events within ${timeoutMs} ms; events: ${JSON.stringify(events).slice(-2000)}`,
                    ),
                  );
                }, timeoutMs);
                waiters.add(check);
                check();
              });
            },
            waitFor(predicate, timeoutMs = 20_000) {
              return new Promise((ok, fail) => {
                const check = () => {
                  const found = events.find(predicate);
                  if (found) {
                    waiters.delete(check);
                    clearTimeout(timer);
                    ok(found);
                  }
                };
                const timer = setTimeout(() => {
                  waiters.delete(check);
                  fail(
                    new Error(
                      `no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events).slice(0, 2000)}; stderr: ${err.slice(-1000)}`,
                    ),
                  );
                }, timeoutMs);
                waiters.add(check);
                check();
              });
            },
          });
        } else if (line.startsWith('{')) {
          try {
            events.push(JSON.parse(line));
          } catch {
            // not one of ours
          }
          for (const waiter of [...waiters]) waiter();
        }
      }
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`fixture exited (${signal ?? code}) before listening: ${err}`)),
    );
  });
}
