/**
 * A network namespace made for a test or a benchmark (`ip netns`, root only): its own loopback and its own
 * per-namespace sysctls (net.core.somaxconn among them), commands run and processes started inside it, and all of it
 * removed by remove(), which kills what was started there first. The fleet lab (issue 27) builds on it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface Namespace {
  readonly name: string;
  /** Runs a command inside it to its end: exit code and output (never throws for a non-zero exit). */
  exec(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running process inside it; remove() kills it if it still runs. */
  spawn(args: string[]): ChildProcess;
  sysctl(key: string, value: string | number): void;
  /** Kills what spawn() started and deletes the namespace. */
  remove(): Promise<void>;
}

/** Whether this process may make namespaces (root, and `ip netns` permitted): the reason when not. */
export function namespacesUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return null;
  } catch (error) {
    return `ip netns is not permitted here: ${(error as Error).message}`;
  }
}

export function createNamespace(name: string): Namespace {
  execFileSync('ip', ['netns', 'add', name]);
  const children = new Set<ChildProcess>();
  const ns: Namespace = {
    name,
    exec: (args, timeoutMs = 60_000) =>
      new Promise((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', name, ...args],
          { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
        );
      }),
    spawn(args) {
      const child = spawn('ip', ['netns', 'exec', name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    sysctl: (key, value) => execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', `${key}=${value}`]),
    async remove() {
      // `ip netns exec` execs the command: the child's pid is the process inside the namespace.
      await Promise.all(
        [...children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGKILL');
            }),
        ),
      );
      execFileSync('ip', ['netns', 'del', name]);
    },
  };
  try {
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (error) {
    execFileSync('ip', ['netns', 'del', name]);
    throw error;
  }
  return ns;
}
