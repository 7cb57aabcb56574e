/**
 * `protect(server, options)`, the node:http adapter, and the runtime every adapter starts from. Works for any
 * node:http or node:https server, express's included (`protect(app.listen(3000))`). This area is the edge where the
 * runtime (src/runtime/) and its admin console (src/admin/) are put together: neither imports the other.
 */
import type { Server } from 'node:http';
import type { RuntimeOptions } from '../runtime/options.ts';
import { Runtime } from '../runtime/runtime.ts';
import { openConsole } from './console.ts';

/** A runtime with its admin console open when configured (the console's setup is checked here, synchronously). */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const runtime = new Runtime(options);
  openConsole(runtime);
  return runtime;
}

export function protect(server: Server, options: RuntimeOptions = {}): Runtime {
  return createRuntime(options).attach(server);
}
