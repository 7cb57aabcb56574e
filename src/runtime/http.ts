/**
 * The node:http adapter: `protect(server, options)`. Works for any node:http or node:https server, express's
 * included (`protect(app.listen(3000))`).
 */
import type { Server } from 'node:http';
import type { RuntimeOptions } from './options.ts';
import { Runtime } from './runtime.ts';

export function protect(server: Server, options: RuntimeOptions = {}): Runtime {
  return new Runtime(options).attach(server);
}
