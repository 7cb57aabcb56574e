/**
 * A child's output, line by line, with a bounded buffer: a line longer than `maxLine` characters is passed on cut
 * (ending in "…") and the rest of it dropped, whether it came in one chunk or many, so a process that never writes a
 * newline cannot grow ours. Linear in the input: each chunk is scanned once.
 */
import type { Readable } from 'node:stream';

export const MAX_LINE = 16 * 1024;

export function eachLine(stream: Readable, onLine: (line: string) => void, maxLine = MAX_LINE): void {
  let pending = '';
  /** The line being read was passed on cut already: what is left of it, up to its newline, is dropped. */
  let skipping = false;
  const deliver = (line: string) => {
    if (skipping) skipping = false;
    else onLine(line.length > maxLine ? `${line.slice(0, maxLine)}…` : line);
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let start = 0;
    let newline: number;
    while ((newline = pending.indexOf('\n', start)) !== -1) {
      deliver(pending.slice(start, newline));
      start = newline + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxLine) {
      if (!skipping) onLine(`${pending.slice(0, maxLine)}…`);
      skipping = true;
      pending = '';
    }
  });
  stream.on('end', () => pending !== '' && deliver(pending));
}
