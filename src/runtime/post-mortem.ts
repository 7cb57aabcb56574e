/**
 * Crash bundles. On an uncaught exception (unhandled rejections included, which Node raises as uncaught exceptions
 * by default), before the process dies, write a directory with:
 *   error.json    the error, its stack and its origin
 *   report.json   the diagnostic report (process.report) with every environment variable's value redacted
 *   samples.json  the last runtime samples (event loop, memory, GC, HTTP)
 *   *.heapsnapshot  optionally, when memory allows
 * It listens on 'uncaughtExceptionMonitor', so Node's own behaviour is unchanged: the error is printed and the process
 * exits with code 1 (unless the app handles 'uncaughtException' itself). Written synchronously: the process is dying.
 *
 * --abort-on-uncaught-exception makes V8 abort before any of this runs: a core dump instead of a bundle (docs/runtime.md).
 */
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { invalidOption } from '../errors.ts';
import path from 'node:path';
import v8 from 'node:v8';
import { redactedReport } from '../redact.ts';
import { memoryHeadroom } from './heap-snapshot.ts';
import type { Logger, ResolvedPostMortem } from './options.ts';
import type { RuntimeSample } from './sampler.ts';

/**
 * Creates the crash-bundle directory (0700) if need be, and refuses one that is not a directory of this user's that
 * others cannot write: a bundle holds the process's stack and command line, and a directory another user controls
 * could be swapped for a link to somewhere else. Called by the Runtime's constructor: protect() throws.
 */
export function checkCrashDirectory(dir: string, option = 'postMortem.dir'): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const ours = process.getuid === undefined || stat.uid === process.getuid();
  if (!stat.isDirectory() || !ours || (stat.mode & 0o022) !== 0) {
    throw invalidOption(
      option,
      `a directory of this user's that others cannot write (${dir} is mode ${(stat.mode & 0o777).toString(8)}, uid ${stat.uid})`,
      dir,
    );
  }
}

export function writeCrashBundle(
  options: ResolvedPostMortem,
  error: unknown,
  origin: string,
  samples: RuntimeSample[],
): string {
  const dir = path.join(options.dir, `crash-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (name: string, data: unknown) =>
    writeFileSync(path.join(dir, name), `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  const err = error instanceof Error ? error : new Error(String(error));
  write('error.json', {
    name: err.name,
    message: err.message,
    stack: err.stack,
    origin,
    time: new Date().toISOString(),
    pid: process.pid,
  });
  write('report.json', redactedReport(err));
  write('samples.json', samples);
  if (options.heapSnapshot && memoryHeadroom() > 2 * v8.getHeapStatistics().used_heap_size) {
    // Synchronous: there is no event loop left to stream it on. v8 names the file; move it under the bundle.
    v8.writeHeapSnapshot(path.join(dir, 'heap.heapsnapshot'));
  }
  if (options.keep > 0) pruneBundles(options.dir, options.keep);
  return dir;
}

/**
 * Removes the oldest crash bundles beyond `keep` (by name: crash-<ISO time>-<pid> sorts by time). Only directories
 * named as bundles are touched, never anything else in the directory.
 */
export function pruneBundles(dir: string, keep: number): void {
  const bundles = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && /^crash-\d{4}-\d\d-\d\dT[\d-]+Z-\d+$/.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  for (const name of bundles.slice(0, Math.max(0, bundles.length - keep)))
    rmSync(path.join(dir, name), { recursive: true, force: true });
}

/** Installs the crash-bundle writer; returns the function that removes it. */
export function installPostMortem(
  options: ResolvedPostMortem,
  samples: () => RuntimeSample[],
  log: Logger,
  onWritten: (dir: string, error: unknown) => void,
): () => void {
  const monitor = (error: unknown, origin: string) => {
    try {
      const dir = writeCrashBundle(options, error, origin, samples());
      log('error', 'uncaught exception: crash bundle written', {
        dir,
        origin,
        error: error instanceof Error ? error.stack : String(error),
      });
      onWritten(dir, error);
    } catch (writeError) {
      log('error', 'uncaught exception: the crash bundle could not be written', { error: String(writeError) });
    }
  };
  process.on('uncaughtExceptionMonitor', monitor);
  return () => process.off('uncaughtExceptionMonitor', monitor);
}
