/** A framework baseline: fastify, with its defaults and logging off. */
import type { Server } from 'node:http';
import Fastify from 'fastify';

export async function createFastifyServer(): Promise<Server> {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
  app.all('*', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Hello World!'));
  await app.ready();
  return app.server;
}
