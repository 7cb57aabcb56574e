/**
 * `protect(server, options)`, the node:http adapter, and the runtime every adapter starts from. Works for any
 * node:http or node:https server, express's included (`protect(app.listen(3000))`).
 */
import type { Server } from 'node:http';
import { openConsole } from './console.ts';
import type { RuntimeOptions } from './options.ts';
import { Runtime } from './runtime.ts';

/** A runtime with its admin console open when configured (the console's setup is checked here, synchronously). */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const runtime = new Runtime(options);
  openConsole(runtime);
  return runtime;
}

export function protect(server: Server, options: RuntimeOptions = {}): Runtime {
  return createRuntime(options).attach(server);
}
