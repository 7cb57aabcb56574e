/**
 * A child's output, line by line, with a bounded buffer: a line longer than `maxLine` characters is passed on cut
 * (ending in "…") rather than buffered, so a process that never writes a newline cannot grow ours.
 */
import type { Readable } from 'node:stream';

export const MAX_LINE = 16 * 1024;

export function eachLine(stream: Readable, onLine: (line: string) => void, maxLine = MAX_LINE): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    if (pending.length > maxLine) {
      onLine(`${pending.slice(0, maxLine)}…`);
      pending = '';
    }
  });
  stream.on('end', () => pending !== '' && onLine(pending));
}
