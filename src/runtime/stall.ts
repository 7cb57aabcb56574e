/**
 * Stall capture, the main thread's side (`protect(server, { stall: true })`): a heartbeat stamped in shared memory
 * every `thresholdMs / 5` (at most 100 ms) by an unref'd timer, and the watchdog thread (stall-watchdog.ts) that
 * watches it. When the watchdog says a stall is over, its capture is completed here: positions mapped through source
 * maps (when the process has them), the file rewritten with how long the loop was held, and `onStall` told (the
 * runtime counts it, logs it, keeps it for the console and tells the supervisor).
 *
 * Off by default: the watchdog is a thread of its own (a few MiB of memory; docs/debugging.md has its cost).
 */
import inspector from 'node:inspector';
import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { sibling } from '../module-file.ts';
import {
  CONNECTED,
  EXIT,
  INSPECTOR,
  writeStallFile,
  type StallCapture,
  type StallFrame,
  type WatchdogData,
  type WatchdogMessage,
} from './stall-file.ts';

export interface ResolvedStall {
  thresholdMs: number;
  profileMs: number;
  maxPerMinute: number;
  dir: string;
  keep: number;
}

/** A stall as the runtime reports it: its capture (or why none), and how long the loop was held. */
export interface StallReport {
  heldMs: number;
  capture: StallCapture | null;
  /** Why there is no capture: the rate limit (stall.maxPerMinute), the inspector open, or the pause never came. */
  why?: string;
}

const WATCHDOG = sibling('./stall-watchdog', import.meta.url);
const REQUEST_KEY = Symbol.for('nodescale.stall.request');

export function startStallWatch(
  options: ResolvedStall,
  lastRequest: () => string | null,
  onStall: (report: StallReport) => void,
  onError: (message: string) => void,
): () => void {
  const buffer = new SharedArrayBuffer(8);
  const beat = new BigInt64Array(buffer);
  const flags = new Int32Array(new SharedArrayBuffer(12));
  const stamp = () => {
    Atomics.store(beat, 0, BigInt(Date.now()));
    Atomics.store(flags, INSPECTOR, inspector.url() === undefined ? 0 : 1);
  };
  stamp();
  const beatMs = Math.max(5, Math.min(100, Math.floor(options.thresholdMs / 5)));
  const timer = setInterval(stamp, beatMs);
  timer.unref();
  // What the watchdog reads while the main thread is paused (evaluated there: no message can reach us meanwhile).
  (globalThis as Record<symbol, unknown>)[REQUEST_KEY] = lastRequest;
  const data: WatchdogData = {
    buffer,
    flags: flags.buffer,
    thresholdMs: options.thresholdMs,
    profileMs: options.profileMs,
    pollMs: Math.max(10, Math.min(100, Math.floor(options.thresholdMs / 5))),
    maxPerMinute: options.maxPerMinute,
    dir: options.dir,
    keep: options.keep,
  };
  // No Node flags of the process's (a worker inherits them: `--input-type`, as `node -e` has it, fails a file entry).
  const worker = new Worker(WATCHDOG, { workerData: data, name: 'nodescale stall watchdog', execArgv: [] });
  // A process that exits during a capture (a profile lasts up to profileMs) waits for the watchdog to disconnect,
  // 250 ms at most: else Node prints "Waiting for the debugger to disconnect..." on stderr as it exits.
  const onExit = () => {
    if (Atomics.load(flags, CONNECTED) !== 1) return;
    Atomics.store(flags, EXIT, 1);
    Atomics.notify(flags, EXIT);
    Atomics.wait(flags, EXIT, 1, 250);
  };
  process.on('exit', onExit);
  worker.unref();
  worker.on('message', (message: WatchdogMessage) => {
    if ('error' in message) return onError(message.error);
    const { capture } = message;
    if (capture !== null) {
      capture.heldMs = message.heldMs;
      capture.stack = capture.stack.map(mapFrame);
      if (capture.profile !== null) capture.profile.top = capture.profile.top.map(mapFrame);
      try {
        writeStallFile(options.dir, capture, options.keep);
      } catch (error) {
        onError(`the capture could not be rewritten: ${(error as Error).message}`);
      }
    }
    onStall({ heldMs: message.heldMs, capture, ...(message.why === undefined ? {} : { why: message.why }) });
  });
  worker.on('error', (error) => onError(`the stall watchdog failed: ${error.message}`));
  return () => {
    clearInterval(timer);
    process.off('exit', onExit);
    delete (globalThis as Record<symbol, unknown>)[REQUEST_KEY];
    void worker.terminate();
  };
}

/** A frame's original position, where the process has a source map for its script. */
function mapFrame<Frame extends StallFrame>(frame: Frame): Frame {
  if (!frame.url.startsWith('file:') && !frame.url.startsWith('/')) return frame;
  try {
    const file = frame.url.startsWith('file:') ? fileURLToPath(frame.url) : frame.url;
    const entry = findSourceMap(file)?.findEntry(frame.line - 1, frame.column - 1);
    if (entry === undefined || !('originalSource' in entry)) return frame;
    return {
      ...frame,
      source: { url: entry.originalSource, line: entry.originalLine + 1, column: entry.originalColumn + 1 },
    };
  } catch {
    return frame;
  }
}
