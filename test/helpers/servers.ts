/**
 * Test servers on port 0, closed after the test: a counting node:http server, and raw net servers that misbehave in
 * chosen ways (garbage, hang-up mid-response, silence).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import type { TestContext } from 'node:test';

export interface Listening {
  url: string;
  port: number;
}

async function listen(t: TestContext, server: net.Server): Promise<Listening> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, port };
}

/** A node:http server that counts the requests it answered; `handler` may shape the response. */
export async function countingServer(
  t: TestContext,
  handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void = (_req, res) => res.end('ok'),
): Promise<Listening & { count: () => number }> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    handler(req, res, count);
  });
  server.keepAliveTimeout = 60_000;
  return { ...(await listen(t, server)), count: () => count };
}

/** A raw server: `onData` gets each chunk a client sends and may write anything back. */
export async function rawServer(
  t: TestContext,
  onData: (socket: net.Socket, chunk: Buffer) => void,
): Promise<Listening> {
  const server = net.createServer((socket) => {
    socket.on('data', (chunk) => onData(socket, chunk));
    socket.on('error', () => {});
  });
  return listen(t, server);
}

/** A port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Counts complete requests in raw bytes received (enough for the simple GETs the tests send). */
export function countRequests(text: string): number {
  return text.split('\r\n\r\n').length - 1;
}

/** The test CA and a certificate for 127.0.0.1 and localhost it signed (test/fixtures/tls). */
export const TEST_TLS = {
  ca: readFileSync(new URL('../fixtures/tls/ca.pem', import.meta.url)),
  cert: readFileSync(new URL('../fixtures/tls/server.pem', import.meta.url)),
  key: readFileSync(new URL('../fixtures/tls/server.key', import.meta.url)),
};

/**
 * An https: counting server with the test certificate; `resumed()` counts the handshakes that resumed a session.
 */
export async function tlsCountingServer(
  t: TestContext,
  handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void = (_req, res) => res.end('ok'),
): Promise<Listening & { count: () => number; handshakes: () => number; resumed: () => number }> {
  let count = 0;
  let handshakes = 0;
  let resumed = 0;
  const server = https.createServer({ cert: TEST_TLS.cert, key: TEST_TLS.key }, (req, res) => {
    count++;
    handler(req, res, count);
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    handshakes++;
    if (socket.isSessionReused()) resumed++;
  });
  server.keepAliveTimeout = 60_000;
  const listening = await listen(t, server);
  return {
    url: listening.url.replace('http:', 'https:'),
    port: listening.port,
    count: () => count,
    handshakes: () => handshakes,
    resumed: () => resumed,
  };
}
