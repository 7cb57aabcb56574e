/**
 * The wire protocol of nodescale's sockets, the admin console's and the supervisor's control socket (src/socket/ is
 * what both use: this framing, the connection, the client, the private Unix socket): newline-delimited JSON, one
 * message a line (docs/console.md).
 *
 *   client → server   { "id": 1, "cmd": "stats", "args": { … } }
 *   server → client   { "id": 1, "ok": true, "result": … }                       a whole answer
 *                     { "id": 1, "ok": false, "error": { "code": "NS_ERR_…", "message": "…" } }
 *                     { "id": 1, "chunk": "<base64>" } … { "id": 1, "ok": true, "result": … }   streamed bytes
 *                     { "id": 1, "event": { … } } …                              streamed events (watch)
 *
 * The first message on a connection that needs authentication is { "id": 0, "cmd": "auth", "args": { "token": "…" } }.
 * A line longer than MAX_LINE_BYTES, or one that is not a JSON object, is answered with an error; the connection is
 * closed after too many of them.
 */
import { LineSplitter } from '../lines.ts';

export const MAX_LINE_BYTES = 1024 * 1024;
/** Before authentication the only message is `auth`, a few hundred bytes: nothing longer is read. */
export const PRE_AUTH_MAX_LINE_BYTES = 4 * 1024;

export interface AdminRequest {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

export type AdminMessage =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: { code: string; message: string } }
  | { id: number; chunk: string }
  | { id: number; event: unknown };

export class LineTooLongError extends Error {}

/** Splits a connection's text into messages, refusing any line past `max` bytes (without buffering it whole). */
export class LineReader {
  readonly #lines: LineSplitter;
  #max: number;

  constructor(max = MAX_LINE_BYTES) {
    this.#lines = new LineSplitter(max, { bytes: true });
    this.#max = max;
  }

  /** The limit from now on (raised once a connection has authenticated). */
  set max(bytes: number) {
    this.#max = bytes;
    this.#lines.max = bytes;
  }

  /** Returns the complete lines in `chunk`; an over-long line comes back as a LineTooLongError in its place. */
  push(chunk: string): (string | LineTooLongError)[] {
    return this.#lines
      .push(chunk)
      .map((line) =>
        typeof line === 'string' ? line : new LineTooLongError(`a message is limited to ${this.#max} bytes`),
      );
  }
}

/** Parses one line into a request, or explains why it is not one. */
export function parseRequest(line: string): AdminRequest | { error: string; id: number | null } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: 'not JSON', id: null };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { error: 'a message must be a JSON object', id: null };
  const { id, cmd, args } = value as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isInteger(id)) return { error: 'a message needs an integer "id"', id: null };
  if (typeof cmd !== 'string' || cmd === '') return { error: 'a message needs a "cmd"', id };
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args)))
    return { error: '"args" must be an object', id };
  return { id, cmd, ...(args === undefined ? {} : { args: args as Record<string, unknown> }) };
}

export function encode(message: AdminMessage | AdminRequest): string {
  return `${JSON.stringify(message)}\n`;
}
