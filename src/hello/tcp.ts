/**
 * The talk's fastest baseline: a raw `net` server that parses just enough HTTP/1.1 to answer every request correctly
 * with "Hello World!": request heads, Content-Length and chunked request bodies (skipped), pipelined requests (answered
 * in order, in one write per read), `Connection: close` and HTTP/1.0, HEAD (no body), and 400 for what is not HTTP.
 */
import net from 'node:net';

const BODY = 'Hello World!';
const MAX_HEAD = 16 * 1024;

let date = new Date().toUTCString();
let dateTimer: NodeJS.Timeout | null = null;
function startDateClock(): () => void {
  if (dateTimer === null) {
    dateTimer = setInterval(() => (date = new Date().toUTCString()), 1000);
    dateTimer.unref();
  }
  return () => {
    if (dateTimer !== null) clearInterval(dateTimer);
    dateTimer = null;
  };
}

function response(head: boolean, close: boolean): string {
  return (
    `HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${BODY.length}\r\nDate: ${date}\r\n` +
    `Connection: ${close ? 'close' : 'keep-alive'}\r\n\r\n${head ? '' : BODY}`
  );
}

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

interface Parsed {
  /** Index just past this request, or -1 when more bytes are needed. */
  end: number;
  head: boolean;
  close: boolean;
}

/** Parses one request at `start` of `text` (latin1). Throws on malformed input. */
export function parseHttpRequest(text: string, start: number): Parsed {
  const headEnd = text.indexOf('\r\n\r\n', start);
  if (headEnd === -1) {
    if (text.length - start > MAX_HEAD) throw new Error('request head too large');
    return { end: -1, head: false, close: false };
  }
  const lineEnd = text.indexOf('\r\n', start);
  const requestLine = text.slice(start, lineEnd);
  const match = /^([A-Z]+) \S+ HTTP\/1\.([01])$/.exec(requestLine);
  if (!match) throw new Error('bad request line');
  let close = match[2] === '0';
  let length = 0;
  let chunked = false;
  const headers = headEnd > lineEnd ? text.slice(lineEnd + 2, headEnd).split('\r\n') : [];
  for (const line of headers) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error('bad header line');
    const name = line.slice(0, colon).toLowerCase();
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) throw new Error('bad content-length');
      length = Number(value);
    } else if (name === 'transfer-encoding') chunked = value.endsWith('chunked');
    else if (name === 'connection')
      close = value.includes('close') ? true : value.includes('keep-alive') ? false : close;
  }
  let end = headEnd + 4;
  if (chunked) {
    // Skip chunks: "size[;ext]\r\n data \r\n", ending with a 0-size chunk and (empty) trailers.
    for (;;) {
      const sizeEnd = text.indexOf('\r\n', end);
      if (sizeEnd === -1) return { end: -1, head: false, close };
      const size = Number.parseInt(text.slice(end, sizeEnd).split(';')[0]!, 16);
      if (!Number.isFinite(size)) throw new Error('bad chunk size');
      if (size === 0) {
        // The last chunk, then trailers (usually none) up to a blank line.
        const blank = text.startsWith('\r\n', sizeEnd + 2) ? sizeEnd : text.indexOf('\r\n\r\n', sizeEnd + 2);
        if (blank === -1) return { end: -1, head: false, close };
        return { end: blank + 4, head: match[1] === 'HEAD', close };
      }
      end = sizeEnd + 2 + size + 2;
      if (end > text.length) return { end: -1, head: false, close };
    }
  }
  end += length;
  if (end > text.length) return { end: -1, head: false, close };
  return { end, head: match[1] === 'HEAD', close };
}

export function createTcpServer(): net.Server {
  const stopClock = startDateClock();
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      const text = pending + chunk.toString('latin1');
      let position = 0;
      let out = '';
      try {
        for (;;) {
          const request = parseHttpRequest(text, position);
          if (request.end === -1) break;
          out += response(request.head, request.close);
          position = request.end;
          if (request.close) {
            socket.end(out);
            return;
          }
        }
      } catch {
        socket.end(out + BAD_REQUEST);
        return;
      }
      pending = position === text.length ? '' : text.slice(position);
      if (out !== '') socket.write(out, 'latin1');
    });
    socket.on('error', () => socket.destroy());
  });
  server.on('close', stopClock);
  return server;
}
