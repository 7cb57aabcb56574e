/**
 * `nodescale run --perf`: the workers' V8 flags for Linux perf, and their map files' lifetime. V8 writes
 * /tmp/perf-<pid>.map (its path is fixed) for `perf report` to name JavaScript functions; it never removes them, so a
 * long-lived supervisor whose workers restart would fill /tmp. They are kept while they may still be read (a `perf
 * record` of a worker since replaced is reported later), the 64 newest of exited workers at most, and all removed
 * when the supervisor stops.
 */
import { rmSync } from 'node:fs';
import type { Worker } from 'node:cluster';

export const PERF_FLAGS = ['--perf-basic-prof', '--interpreted-frames-native-stack'] as const;
const KEEP_EXITED = 64;

export const perfMapOf = (pid: number) => `/tmp/perf-${pid}.map`;

export class PerfMaps {
  readonly #running = new Set<number>();
  readonly #exited: number[] = [];

  started(pid: number, worker: Worker): void {
    this.#running.add(pid);
    worker.once('exit', () => {
      this.#running.delete(pid);
      this.#exited.push(pid);
      while (this.#exited.length > KEEP_EXITED) rmSync(perfMapOf(this.#exited.shift()!), { force: true });
    });
  }

  /** At stop: every map file of a worker this supervisor started. */
  removeAll(): void {
    for (const pid of [...this.#running, ...this.#exited.splice(0)]) rmSync(perfMapOf(pid), { force: true });
    this.#running.clear();
  }
}
