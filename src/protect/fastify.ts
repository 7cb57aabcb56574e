/**
 * The fastify adapter: `app.register(nodescaleFastify, options)`, then `app.nodescale` is the runtime. It protects
 * fastify's own server and labels HTTP metrics with fastify's route patterns (`/users/:id`, never the raw URL).
 * On graceful shutdown, fastify's onClose hooks run (app.close()) after in-flight requests have drained.
 *
 * An entry of its own (`nodescale/runtime/fastify`): its declarations use fastify's types, which a project without
 * fastify does not have.
 */
import '../node-version.ts'; // first: on an unsupported Node, NS_ERR_NODE_VERSION before anything else loads
import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import type { RuntimeOptions } from '../runtime/options.ts';
import { ROUTE, type Runtime } from '../runtime/runtime.ts';
import { createRuntime } from './protect.ts';

declare module 'fastify' {
  interface FastifyInstance {
    nodescale: Runtime;
  }
}

const plugin: FastifyPluginCallback<RuntimeOptions> = (app: FastifyInstance, options, done) => {
  // fastify's own register options share the object: they are fastify's, not unknown runtime options.
  const {
    prefix: _prefix,
    logLevel: _logLevel,
    logSerializers: _logSerializers,
    ...runtimeOptions
  } = options as RuntimeOptions & Record<string, unknown>;
  const runtime = createRuntime(runtimeOptions).attach(app.server);
  app.decorate('nodescale', runtime);
  app.addHook('onRequest', (request, _reply, next) => {
    (request.raw as { [ROUTE]?: string })[ROUTE] = request.routeOptions.url ?? 'unmatched';
    next();
  });
  if (runtime.options.shutdown) runtime.onShutdown(() => app.close());
  app.addHook('onClose', (_app, next) => {
    runtime.close();
    next();
  });
  done();
};

export const nodescaleFastify = fp(plugin, { fastify: '5.x', name: 'nodescale-runtime' });
