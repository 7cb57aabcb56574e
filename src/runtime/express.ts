/**
 * The express adapter. express apps run on a node:http server, so `protect(app.listen(port), options)` does the
 * protecting; this middleware only gives the HTTP metrics express's route patterns (`/users/:id`) as labels.
 *
 *   const server = app.listen(3000);
 *   const runtime = protect(server);
 *   app.use(expressRoutes());   // before the routes
 */
import type { IncomingMessage } from 'node:http';
import { ROUTE } from './runtime.ts';

interface ExpressRequest extends IncomingMessage {
  baseUrl?: string;
  route?: { path?: unknown };
  [ROUTE]?: string | (() => string | undefined);
}

export function expressRoutes(): (req: IncomingMessage, res: unknown, next: () => void) => void {
  return (req, _res, next) => {
    const r = req as ExpressRequest;
    // express sets req.route once a route matches; it is read when the response closes.
    r[ROUTE] = () => (typeof r.route?.path === 'string' ? `${r.baseUrl ?? ''}${r.route.path}` : 'unmatched');
    next();
  };
}
