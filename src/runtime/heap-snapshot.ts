/**
 * Writes a V8 heap snapshot safely: to a file created with mode 0600 that did not exist before (no following or
 * overwriting of someone else's file), in a directory created with mode 0700, and only when there is memory headroom
 * (taking a snapshot needs about as much memory again as the heap, outside it). Shared by the leak detector, the
 * crash bundle and the admin console.
 */
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';

export interface SnapshotResult {
  file: string | null;
  /** Why no snapshot was written. */
  skipped: string | null;
}

/** Bytes this process may still use: the smaller of free system memory and the cgroup's limit minus its usage. */
export function memoryHeadroom(): number {
  let headroom = os.freemem();
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const current = Number(readFileSync('/sys/fs/cgroup/memory.current', 'utf8').trim());
    if (max !== 'max') headroom = Math.min(headroom, Number(max) - current);
  } catch {
    // No cgroup v2 memory controller: free memory it is.
  }
  return headroom;
}

export async function writeHeapSnapshot(dir: string, prefix: string): Promise<SnapshotResult> {
  const heapUsed = v8.getHeapStatistics().used_heap_size;
  const headroom = memoryHeadroom();
  if (headroom < 2 * heapUsed) {
    return {
      file: null,
      skipped: `not enough memory headroom (${Math.round(headroom / 1e6)} MB free, ${Math.round((2 * heapUsed) / 1e6)} MB needed)`,
    };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(
    dir,
    `${prefix}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.heapsnapshot`,
  );
  // 'wx': fail if the file exists; mode 0600 from creation, not chmod'ed afterwards.
  await pipeline(v8.getHeapSnapshot(), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  return { file, skipped: null };
}
