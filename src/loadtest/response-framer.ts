/**
 * A minimal incremental HTTP/1.1 response framer: it finds where each response ends, and reads only what that needs
 * (status code, Content-Length, Transfer-Encoding: chunked, Connection: close). It is the load generator's hot path,
 * so it works on bytes and allocates nothing per response in the common case (a whole head inside one read).
 *
 * Written here rather than taken from llhttp/undici because a load generator only has to frame responses, not expose
 * them, and every byte of the work it does not do is CPU the target gets instead.
 */

const CR = 13;
const LF = 10;
/** A head larger than this is not a response we will wait for: it is a parse error. */
const MAX_HEAD_BYTES = 64 * 1024;

/** Framer states (plain numbers: the switch on them is the hot path). */
const State = {
  Head: 0,
  Body: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkDataEnd: 4,
  Trailers: 5,
  UntilClose: 6,
} as const;
type State = (typeof State)[keyof typeof State];

export interface FramerEvents {
  /** A whole response has been read. `close` is true when the server said it will close the connection. */
  onResponse(statusCode: number, close: boolean): void;
  /** Whether the response being framed answers a HEAD request (no body, whatever its headers say). */
  answersHead?(): boolean;
}

export class ParseError extends Error {
  override name = 'ParseError';
}

const lower = (byte: number): number => (byte >= 65 && byte <= 90 ? byte | 0x20 : byte);

function headerNameIs(buf: Uint8Array, start: number, end: number, name: string): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (lower(buf[start + i]!) !== name.charCodeAt(i)) return false;
  return true;
}

/** True when `token` appears in buf[start, end) case-insensitively (header values are short). */
function valueHas(buf: Uint8Array, start: number, end: number, token: string): boolean {
  const last = end - token.length;
  outer: for (let i = start; i <= last; i++) {
    for (let j = 0; j < token.length; j++) if (lower(buf[i + j]!) !== token.charCodeAt(j)) continue outer;
    return true;
  }
  return false;
}

/** The index just past the blank line that ends a head starting at `start`, or -1. A bare LF LF is tolerated. */
function findHeadEnd(buf: Uint8Array, start: number, from: number, length: number): number {
  for (let i = Math.max(from, start + 1); i < length; i++) {
    if (buf[i] !== LF) continue;
    if (buf[i - 1] === LF || (buf[i - 1] === CR && i - 2 >= start && buf[i - 2] === LF)) return i + 1;
  }
  return -1;
}

const PREFIX = 'HTTP/1.';

/** Fails as soon as the bytes cannot begin a status line, rather than waiting for a head that will never end. */
function checkPrefix(buf: Uint8Array, start: number, length: number): void {
  const n = Math.min(PREFIX.length, length - start);
  for (let i = 0; i < n; i++)
    if (buf[start + i] !== PREFIX.charCodeAt(i)) throw new ParseError('not an HTTP/1.x status line');
}

export class ResponseFramer {
  readonly #events: FramerEvents;
  #state: State = State.Head;
  /** Bytes of a head split over reads, copied out of the (reused) read buffer. */
  #pending: Buffer | null = null;
  #remaining = 0;
  #chunkSize = 0;
  #chunkSizeDigits = 0;
  #lineBytes = 0;
  #status = 0;
  #close = false;
  /** Every response answers a HEAD request: none has a body, whatever it says. */
  readonly #headRequests: boolean;
  /** Some responses do: events.answersHead() says which. */
  readonly #someHead: boolean;

  constructor(events: FramerEvents, headRequests: boolean | 'some' = false) {
    this.#events = events;
    this.#headRequests = headRequests === true;
    this.#someHead = headRequests === 'some';
  }

  /** The connection closed: ends a response that is delimited by the close. Returns true if one ended. */
  end(): boolean {
    if (this.#state === State.UntilClose) {
      this.#state = State.Head;
      this.#events.onResponse(this.#status, true);
      return true;
    }
    return false;
  }

  reset(): void {
    this.#state = State.Head;
    this.#pending = null;
  }

  /** Frames `buf[0, length)`. Throws ParseError on bytes that are not HTTP/1.x. */
  execute(buf: Buffer, length: number): void {
    let pos = 0;
    while (pos < length) {
      switch (this.#state) {
        case State.Head:
          pos = this.#head(buf, pos, length);
          break;
        case State.Body: {
          const take = Math.min(this.#remaining, length - pos);
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#complete();
          break;
        }
        case State.ChunkSize:
          pos = this.#chunkSizeLine(buf, pos, length);
          break;
        case State.ChunkData: {
          const take = Math.min(this.#remaining, length - pos);
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#state = State.ChunkDataEnd;
            this.#lineBytes = 0;
          }
          break;
        }
        case State.ChunkDataEnd:
          // The CRLF after a chunk's data.
          if (buf[pos] === LF) {
            this.#state = State.ChunkSize;
            this.#chunkSize = 0;
            this.#chunkSizeDigits = 0;
            this.#lineBytes = 0;
          } else if (buf[pos] !== CR || ++this.#lineBytes > 1) throw new ParseError('missing CRLF after chunk data');
          pos++;
          break;
        case State.Trailers:
          pos = this.#trailers(buf, pos, length);
          break;
        case State.UntilClose:
          pos = length;
          break;
      }
    }
  }

  #head(buf: Buffer, pos: number, length: number): number {
    if (this.#pending === null) {
      checkPrefix(buf, pos, length);
      const end = findHeadEnd(buf, pos, pos, length);
      if (end === -1) {
        this.#keepPending(Buffer.from(buf.subarray(pos, length)));
        return length;
      }
      this.#parseHead(buf, pos, end);
      return end;
    }
    // A head split over reads: join it with what came before (rare, so a copy is fine).
    const previous = this.#pending.length;
    const data = Buffer.concat([this.#pending, buf.subarray(pos, length)]);
    checkPrefix(data, 0, data.length);
    const end = findHeadEnd(data, 0, Math.max(0, previous - 3), data.length);
    if (end === -1) {
      this.#keepPending(data);
      return length;
    }
    this.#pending = null;
    this.#parseHead(data, 0, end);
    return pos + end - previous;
  }

  #keepPending(head: Buffer): void {
    if (head.length > MAX_HEAD_BYTES) throw new ParseError('response head larger than 64 KiB');
    this.#pending = head;
  }

  #parseHead(buf: Buffer, start: number, end: number): void {
    // Status line: "HTTP/1.x SSS reason".
    if (
      end - start < 12 ||
      buf[start] !== 72 /* H */ ||
      buf[start + 1] !== 84 ||
      buf[start + 2] !== 84 ||
      buf[start + 3] !== 80 ||
      buf[start + 4] !== 47 /* / */ ||
      buf[start + 5] !== 49 /* 1 */ ||
      buf[start + 6] !== 46 /* . */ ||
      buf[start + 8] !== 32
    ) {
      throw new ParseError('not an HTTP/1.x status line');
    }
    let status = 0;
    for (let i = start + 9; i < start + 12; i++) {
      const digit = buf[i]! - 48;
      if (digit < 0 || digit > 9) throw new ParseError('bad status code');
      status = status * 10 + digit;
    }
    const http10 = buf[start + 7] === 48; /* 0 */
    let contentLength = -1;
    let chunked = false;
    let close = http10;
    // Header lines.
    let line = start;
    while (buf[line] !== LF) line++;
    line++;
    while (line < end) {
      let eol = line;
      while (buf[eol] !== LF) eol++;
      const lineEnd = buf[eol - 1] === CR ? eol - 1 : eol;
      if (lineEnd === line) break; // the empty line
      let colon = line;
      while (colon < lineEnd && buf[colon] !== 58 /* : */) colon++;
      if (colon === lineEnd) throw new ParseError('header line without a colon');
      const first = lower(buf[line]!);
      if (first === 99 /* c */) {
        if (headerNameIs(buf, line, colon, 'content-length')) {
          let value = 0;
          let digits = 0;
          for (let i = colon + 1; i < lineEnd; i++) {
            const byte = buf[i]!;
            if (byte === 32 || byte === 9) continue;
            const digit = byte - 48;
            if (digit < 0 || digit > 9) throw new ParseError('bad Content-Length');
            value = value * 10 + digit;
            digits++;
          }
          if (digits === 0 || (contentLength !== -1 && contentLength !== value))
            throw new ParseError('bad Content-Length');
          contentLength = value;
        } else if (headerNameIs(buf, line, colon, 'connection')) {
          if (valueHas(buf, colon + 1, lineEnd, 'close')) close = true;
          else if (valueHas(buf, colon + 1, lineEnd, 'keep-alive')) close = false;
        }
      } else if (first === 116 /* t */ && headerNameIs(buf, line, colon, 'transfer-encoding')) {
        chunked = valueHas(buf, colon + 1, lineEnd, 'chunked');
      }
      line = eol + 1;
    }

    this.#status = status;
    this.#close = close;
    if (status >= 100 && status < 200) {
      // An interim response (100 Continue, 103 Early Hints): the real one follows. 101 ends HTTP/1.1 on this socket.
      if (status === 101) throw new ParseError('101 Switching Protocols: the target left HTTP/1.1');
      this.#state = State.Head;
      return;
    }
    if (status === 204 || status === 304 || this.#headRequests || (this.#someHead && this.#events.answersHead!())) {
      this.#complete();
    } else if (chunked) {
      this.#state = State.ChunkSize;
      this.#chunkSize = 0;
      this.#chunkSizeDigits = 0;
      this.#lineBytes = 0;
    } else if (contentLength >= 0) {
      if (contentLength === 0) this.#complete();
      else {
        this.#remaining = contentLength;
        this.#state = State.Body;
      }
    } else {
      this.#close = true;
      this.#state = State.UntilClose;
    }
  }

  #chunkSizeLine(buf: Buffer, pos: number, length: number): number {
    while (pos < length) {
      const byte = buf[pos++]!;
      if (++this.#lineBytes > 4096) throw new ParseError('chunk size line too long');
      if (byte === LF) {
        if (this.#chunkSizeDigits === 0) throw new ParseError('empty chunk size');
        if (this.#chunkSize === 0) {
          this.#state = State.Trailers;
          this.#lineBytes = 0;
        } else {
          this.#remaining = this.#chunkSize;
          this.#state = State.ChunkData;
        }
        return pos;
      }
      if (this.#chunkSizeDigits === -1 || byte === CR) continue; // chunk extensions, or the CR of CRLF
      if (byte === 59 /* ; */ || byte === 32 || byte === 9) {
        if (this.#chunkSizeDigits === 0) throw new ParseError('bad chunk size');
        this.#chunkSizeDigits = -1; // the rest of the line is a chunk extension
        continue;
      }
      const lowered = lower(byte);
      const digit = lowered >= 48 && lowered <= 57 ? lowered - 48 : lowered >= 97 && lowered <= 102 ? lowered - 87 : -1;
      if (digit === -1 || this.#chunkSizeDigits >= 12) throw new ParseError('bad chunk size');
      this.#chunkSize = this.#chunkSize * 16 + digit;
      this.#chunkSizeDigits++;
    }
    return pos;
  }

  #trailers(buf: Buffer, pos: number, length: number): number {
    // Trailer lines end at an empty line; #lineBytes counts the bytes of the current line other than CR.
    while (pos < length) {
      const byte = buf[pos++]!;
      if (byte === LF) {
        if (this.#lineBytes === 0) {
          this.#complete();
          return pos;
        }
        this.#lineBytes = 0;
      } else if (byte !== CR) {
        if (++this.#lineBytes > MAX_HEAD_BYTES) throw new ParseError('trailers too large');
      }
    }
    return pos;
  }

  #complete(): void {
    this.#state = State.Head;
    this.#events.onResponse(this.#status, this.#close);
  }
}
