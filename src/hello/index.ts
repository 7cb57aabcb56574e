/**
 * The talk's baseline servers, each answering "Hello World!" to any request, HTTP/1.1 with keep-alive.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { listen, origin } from '../listen.ts';

export const HELLO_KINDS = ['tcp', 'http', 'fastify', 'express'] as const;
export type HelloKind = (typeof HELLO_KINDS)[number];

export interface HelloServer {
  kind: HelloKind;
  url: string;
  server: net.Server;
  close(): Promise<void>;
}

/** Each server's module is loaded when it starts: the tcp server does not load express. */
const FACTORIES: Record<HelloKind, () => Promise<net.Server>> = {
  tcp: async () => (await import('./tcp.ts')).createTcpServer(),
  http: async () => (await import('./http.ts')).createHttpServer(),
  fastify: async () => (await import('./fastify.ts')).createFastifyServer(),
  express: async () => (await import('./express.ts')).createExpressServer(),
};

export function isHelloKind(value: string): value is HelloKind {
  return (HELLO_KINDS as readonly string[]).includes(value);
}

export interface HelloOptions {
  port?: number;
  host?: string;
  /** Serve https: TLS in front of the same server, with this certificate (chain) and key, PEM. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export async function startHello(kind: HelloKind, options: HelloOptions = {}): Promise<HelloServer> {
  const host = options.host ?? '127.0.0.1';
  const server = await FACTORIES[kind]();
  // With TLS, a tls.Server accepts and hands each decrypted socket to the same server, whichever kind it is: the
  // four servers compare as they do over plain TCP, with TLS's cost added to each alike.
  const front = options.tls === undefined ? null : tls.createServer({ cert: options.tls.cert, key: options.tls.key });
  front?.on('secureConnection', (socket) => server.emit('connection', socket));
  front?.on('tlsClientError', () => {});
  const listening = front ?? server;
  const sockets = new Set<net.Socket>();
  listening.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = await listen(listening, options.port ?? 0, host, `the ${kind} hello server`);
  return {
    kind,
    url: `${origin(address).replace(/^http:/, front === null ? 'http:' : 'https:')}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        listening.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
