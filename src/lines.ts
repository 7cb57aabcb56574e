/**
 * Text split into lines with a bounded buffer, the one line splitter of nodescale: a child's output (eachLine) and
 * the NDJSON sockets' messages (socket/protocol.ts) both read through it. A line longer than the limit comes out as a
 * TooLong with its first characters, and the rest of it is dropped unread, whether it came in one chunk or many: a
 * peer that never writes a newline cannot grow our buffer. Linear in the input: each chunk is scanned once.
 */
import type { Readable } from 'node:stream';

export const MAX_LINE = 16 * 1024;

/** A line past the limit: its first `max` characters; the rest was dropped. */
export interface TooLong {
  readonly tooLong: true;
  readonly head: string;
}

export class LineSplitter {
  #max: number;
  readonly #length: (text: string) => number;
  #pending = '';
  /** The line being read was reported too long already: what is left of it, up to its newline, is dropped. */
  #skipping = false;

  /** `bytes`: the limit counts UTF-8 bytes (a wire protocol's), else characters. */
  constructor(max: number, { bytes = false } = {}) {
    this.#max = max;
    this.#length = bytes ? (text) => Buffer.byteLength(text) : (text) => text.length;
  }

  /** The limit from now on (an NDJSON connection that authenticated may send longer lines). */
  set max(limit: number) {
    this.#max = limit;
  }

  /** The complete lines in `chunk`, in order. */
  push(chunk: string): (string | TooLong)[] {
    const out: (string | TooLong)[] = [];
    const text = this.#pending + chunk;
    let start = 0;
    let newline: number;
    while ((newline = text.indexOf('\n', start)) !== -1) {
      const line = text.slice(start, newline);
      start = newline + 1;
      if (this.#skipping) this.#skipping = false;
      else out.push(this.#length(line) > this.#max ? this.#tooLong(line) : line);
    }
    const rest = text.slice(start);
    if (this.#length(rest) > this.#max) {
      if (!this.#skipping) out.push(this.#tooLong(rest));
      this.#skipping = true;
      this.#pending = '';
    } else this.#pending = rest;
    return out;
  }

  /** At the end of the input: its last line, if it had no newline (and was not reported too long already). */
  end(): string | null {
    const rest = this.#pending;
    this.#pending = '';
    const skipped = this.#skipping;
    this.#skipping = false;
    return skipped || rest === '' ? null : rest;
  }

  #tooLong(line: string): TooLong {
    return { tooLong: true, head: line.slice(0, this.#max) };
  }
}

/** A stream's lines; a line longer than `maxLine` characters is passed on cut, ending in "…". */
export function eachLine(stream: Readable, onLine: (line: string) => void, maxLine = MAX_LINE): void {
  const splitter = new LineSplitter(maxLine);
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    for (const line of splitter.push(chunk)) onLine(typeof line === 'string' ? line : `${line.head}…`);
  });
  stream.on('end', () => {
    const last = splitter.end();
    if (last !== null) onLine(last);
  });
}
