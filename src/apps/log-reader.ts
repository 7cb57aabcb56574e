/**
 * Reading an app's log (supervisor/log-file.ts writes it): its files oldest first, filtered by worker and time, the
 * last N records, and following it through rotations. A line that is not a JSON object (a file written by something
 * else, a line cut at a crash) is kept as a message of its own, never a reason to stop.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

export interface LogRecord {
  time?: string;
  worker?: number;
  pid?: number;
  stream?: 'stdout' | 'stderr';
  level?: string;
  source?: string;
  message?: unknown;
  [field: string]: unknown;
}

export interface LogFilter {
  worker?: number;
  /** Records at or after this time (ms since the epoch). */
  sinceMs?: number;
}

/** The log's files that exist, oldest first: app.log.<n> … app.log.1, app.log. */
export function logFiles(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let rotated: number[];
  try {
    rotated = readdirSync(dir)
      .map((name) => (name.startsWith(`${base}.`) ? Number(name.slice(base.length + 1)) : NaN))
      .filter((n) => Number.isSafeInteger(n) && n > 0);
  } catch {
    return [];
  }
  rotated.sort((a, b) => b - a);
  return [...rotated.map((n) => `${file}.${n}`), ...(existsSync(file) ? [file] : [])];
}

export function parseRecord(line: string): LogRecord {
  if (line.startsWith('{')) {
    try {
      const value: unknown = JSON.parse(line);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as LogRecord;
    } catch {
      // not JSON: below
    }
  }
  return { message: line };
}

export function matches(record: LogRecord, filter: LogFilter): boolean {
  if (filter.worker !== undefined && record.worker !== filter.worker) return false;
  if (filter.sinceMs !== undefined) {
    const at = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
    if (!(at >= filter.sinceMs)) return false;
  }
  return true;
}

/** Reads a whole file's lines (the log's files are bounded by its rotation size). */
function fileLines(file: string): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return []; // rotated away between the listing and now
  }
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    const text = buffer.subarray(0, read).toString('utf8');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines;
  } finally {
    closeSync(fd);
  }
}

/**
 * In time order. The file is nearly so already: the supervisor writes each line as it comes, except that it holds a
 * worker's line up to 50 ms to join the lines of a stack trace into one record. A stable sort: records without a
 * time keep their place.
 */
export function byTime(records: LogRecord[]): LogRecord[] {
  const at = (r: LogRecord) => (typeof r.time === 'string' ? Date.parse(r.time) : NaN);
  return records.sort((a, b) => {
    const d = at(a) - at(b);
    return Number.isNaN(d) ? 0 : d;
  });
}

/** The last `lines` records that pass the filter, in time order, reading the newest files first and no more. */
export function lastRecords(file: string, lines: number, filter: LogFilter = {}): LogRecord[] {
  const out: LogRecord[] = [];
  for (const name of logFiles(file).reverse()) {
    const records = fileLines(name)
      .map(parseRecord)
      .filter((r) => matches(r, filter));
    out.unshift(...records.slice(Math.max(0, records.length - (lines - out.length))));
    if (out.length >= lines) break;
  }
  return byTime(out);
}

/**
 * Follows the log from its end: calls `onRecord` for each new record that passes the filter, through rotations (the
 * file it reads is renamed away: it reads that one to its end, then goes on in the new one from its start). Polls
 * every `intervalMs` (fs.watch loses a rename on some filesystems; a poll does not). Returns the stop function.
 */
export function followLog(
  file: string,
  filter: LogFilter,
  onRecord: (record: LogRecord) => void,
  intervalMs = 200,
): () => void {
  let fd: number | null = null;
  let inode = -1;
  let position = 0;
  let partial = '';
  const buffer = Buffer.alloc(64 * 1024);
  const open = (fromEnd: boolean) => {
    try {
      fd = openSync(file, 'r');
    } catch {
      fd = null;
      return;
    }
    const stat = fstatSync(fd);
    inode = stat.ino;
    position = fromEnd ? stat.size : 0;
    partial = '';
  };
  const drain = () => {
    if (fd === null) return;
    const batch: LogRecord[] = [];
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) break;
      position += n;
      const text = partial + buffer.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const record = parseRecord(line);
        if (matches(record, filter)) batch.push(record);
      }
    }
    for (const record of byTime(batch)) onRecord(record);
  };
  open(true);
  const tick = () => {
    let current: number | null = null;
    try {
      current = statSync(file).ino;
    } catch {
      // between the rename and the new file: next tick
    }
    // Read after the stat: if the file was rotated, its writer closed it before the rename, so it is complete now.
    drain();
    if (fd === null) {
      if (current !== null) open(false);
      drain();
    } else if (current !== null && current !== inode) {
      closeSync(fd);
      open(false);
      drain();
    }
  };
  const timer = setInterval(tick, intervalMs);
  return () => {
    clearInterval(timer);
    tick();
    if (fd !== null) closeSync(fd);
    fd = null;
  };
}
