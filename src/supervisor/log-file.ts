/**
 * The app's log file, written and rotated by the supervisor itself (`nodescale run --log-file FILE`, which
 * `nodescale start` gives): one JSON object a line — every worker's output tagged with its worker, pid and stream, and
 * the supervisor's own lines — so that `nodescale logs` can filter by worker and time and merge nothing.
 *
 * Rotation by size, the way logrotate's rename mode does it and never copytruncate: the supervisor is the file's only
 * writer, so at `maxBytes` it closes the file, renames app.log → app.log.1 → … → app.log.<keep> (the oldest deleted),
 * and opens a new app.log. No line is lost or split at a rotation, and the files never hold more than about
 * (keep + 1) × maxBytes. A reader following the file (`logs --follow`) sees the rename and goes on in the new file.
 *
 * Lines are buffered and written once per turn of the event loop (one write for a burst of lines), synchronously:
 * what a supervisor logged before it exits is in the file.
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface LogFileOptions {
  /** Rotate when the file would grow past this (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept beside the current one (default 5). */
  keep?: number;
}

export const LOG_FILE_DEFAULTS = { maxBytes: 10 * 1024 * 1024, keep: 5 } as const;

/** The files of a log, oldest first: app.log.<keep> … app.log.1, app.log (those that exist are for the caller). */
export const rotatedNames = (file: string, keep: number): string[] => [
  ...Array.from({ length: keep }, (_, i) => `${file}.${keep - i}`),
  file,
];

export class LogFile {
  readonly file: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #fd: number;
  #size: number;
  #pending: string[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #closed = false;

  constructor(file: string, options: LogFileOptions = {}) {
    this.file = file;
    this.#maxBytes = options.maxBytes ?? LOG_FILE_DEFAULTS.maxBytes;
    this.#keep = options.keep ?? LOG_FILE_DEFAULTS.keep;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.#fd = openSync(file, 'a', 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  /** Adds one record (a line of JSON); written at the end of this turn of the event loop. */
  write(record: Record<string, unknown>): void {
    if (this.#closed) return;
    const line = `${JSON.stringify(record)}\n`;
    this.#pending.push(line);
    this.#pendingBytes += Buffer.byteLength(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    // A burst that would hold much in memory is written at once.
    if (this.#pendingBytes > 256 * 1024) this.flush();
  }

  /** Writes what is buffered, rotating first where a line would take the file past its size. */
  flush(): void {
    this.#scheduled = false;
    let chunk = '';
    let chunkBytes = 0;
    for (const line of this.#pending) {
      const bytes = Buffer.byteLength(line);
      if (this.#size + chunkBytes + bytes > this.#maxBytes && this.#size + chunkBytes > 0) {
        this.#writeOut(chunk);
        this.#rotate();
        chunk = '';
        chunkBytes = 0;
      }
      chunk += line;
      chunkBytes += bytes;
    }
    this.#writeOut(chunk);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #writeOut(chunk: string): void {
    if (chunk === '') return;
    const buffer = Buffer.from(chunk);
    let written = 0;
    while (written < buffer.length) written += writeSync(this.#fd, buffer, written);
    this.#size += buffer.length;
  }

  #rotate(): void {
    closeSync(this.#fd);
    const names = rotatedNames(this.file, this.#keep);
    rmSync(names[0]!, { force: true });
    for (let i = 1; i < names.length; i++) {
      try {
        renameSync(names[i]!, names[i - 1]!);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    this.#fd = openSync(this.file, 'a', 0o600);
    this.#size = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    closeSync(this.#fd);
  }
}
