import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParseError, ResponseFramer } from '../../src/loadtest/response-framer.ts';

function frame(
  chunks: (string | Buffer)[],
  head = false,
): { statuses: number[]; closes: boolean[]; framer: ResponseFramer } {
  const statuses: number[] = [];
  const closes: boolean[] = [];
  const framer = new ResponseFramer(
    { onResponse: (status, close) => (statuses.push(status), closes.push(close)) },
    head,
  );
  // The generator reuses one read buffer: copy every chunk into the same buffer, as it does.
  const shared = Buffer.alloc(65536);
  for (const chunk of chunks) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, 'latin1');
    shared.fill(0x58);
    bytes.copy(shared);
    framer.execute(shared, bytes.length);
  }
  return { statuses, closes, framer };
}

/** Every way of cutting `text` in two, framed as two reads. */
function everySplit(text: string, expected: number[], head = false): void {
  for (let cut = 0; cut <= text.length; cut++) {
    const { statuses } = frame([text.slice(0, cut), text.slice(cut)], head);
    assert.deepEqual(statuses, expected, `split at ${cut}`);
  }
}

const cl = (status: number, body: string, extra = '') =>
  `HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

test('Content-Length responses, pipelined in one read and split at every byte', () => {
  const two = cl(200, 'Hello World!') + cl(404, 'nope');
  assert.deepEqual(frame([two]).statuses, [200, 404]);
  everySplit(two, [200, 404]);
});

test('chunked responses with extensions and trailers, split at every byte', () => {
  const chunked =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nHello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n';
  everySplit(chunked + cl(201, 'x'), [200, 201]);
});

test('header names and values are case-insensitive; Connection: close is reported', () => {
  const { statuses, closes } = frame([`HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: 2\r\nCONNECTION: Close\r\n\r\nok`]);
  assert.deepEqual(statuses, [200]);
  assert.deepEqual(closes, [true]);
});

test('1xx interim responses are skipped; 204, 304 and HEAD have no body', () => {
  assert.deepEqual(
    frame(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' + cl(200, 'ok')]).statuses,
    [200],
  );
  assert.deepEqual(
    frame(['HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n' + cl(200, 'ok')]).statuses,
    [204, 200],
  );
  assert.deepEqual(frame(['HTTP/1.1 304 Not Modified\r\n\r\n' + cl(200, 'ok')]).statuses, [304, 200]);
  // A HEAD response announces a length but carries no body.
  assert.deepEqual(
    frame(['HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n'], true)
      .statuses,
    [200, 200],
  );
});

test('a response without length ends when the connection closes', () => {
  const { statuses, framer } = frame(['HTTP/1.0 200 OK\r\n\r\nsome body', ' and more']);
  assert.deepEqual(statuses, []);
  assert.equal(framer.end(), true);
});

test('HTTP/1.0 responses close unless keep-alive is said', () => {
  assert.deepEqual(frame(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).closes, [true]);
  assert.deepEqual(frame(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n']).closes, [false]);
});

test('garbage is a ParseError, not a crash or a hang', () => {
  for (const garbage of [
    'SSH-2.0-OpenSSH_9.2\r\n\r\n',
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 2x0 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
  ]) {
    assert.throws(() => frame([garbage]), ParseError, garbage);
  }
  assert.throws(() => frame(['HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n']), ParseError);
  assert.throws(() => frame(['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n']), ParseError);
  assert.throws(() => frame(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n']), ParseError);
  assert.throws(() => frame(['HTTP/1.1 101 Switching Protocols\r\n\r\n']), ParseError);
  // A head that never ends is refused past 64 KiB instead of buffered forever.
  assert.throws(
    () => frame(['HTTP/1.1 200 OK\r\n', ...Array.from({ length: 70 }, () => `X: ${'a'.repeat(1020)}\r\n`)]),
    ParseError,
  );
});
