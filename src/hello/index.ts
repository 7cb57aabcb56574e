/**
 * The talk's baseline servers, each answering "Hello World!" to any request, HTTP/1.1 with keep-alive.
 */
import type net from 'node:net';
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

export async function startHello(
  kind: HelloKind,
  options: { port?: number; host?: string } = {},
): Promise<HelloServer> {
  const host = options.host ?? '127.0.0.1';
  const server = await FACTORIES[kind]();
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = await listen(server, options.port ?? 0, host, `the ${kind} hello server`);
  return {
    kind,
    url: `${origin(address)}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
