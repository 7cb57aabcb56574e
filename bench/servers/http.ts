/**
 * A bench target: node:http answering "Hello World!", optionally after blocking the loop for --block ms (a CPU-bound
 * route), optionally protected by nodescale/runtime with the JSON options given after --protect.
 *   node bench/servers/http.ts [--port 0] [--block 5] [--protect '{"overload":{"maxLagMs":10}}'] [--startup-ms 0]
 * --startup-ms: how long the app takes to get ready (connecting to its database, say) before it listens.
 * --stall-at MS --stall-ms N: once, MS after it listens, block the loop for N ms (a neighbour starting, a GC storm).
 * --slow-every N --slow-ms MS: every Nth request is the route /report, which blocks the loop MS in reportRoute().
 * As a cluster worker it says ready (process.send('ready')) once it listens: `nodescale run` and pm2's wait_ready.
 */
import { subscribe } from 'node:diagnostics_channel';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { protect } from 'nodescale/runtime';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    block: { type: 'string' },
    protect: { type: 'string' },
    'startup-ms': { type: 'string' },
    timed: { type: 'boolean' },
    'stall-at': { type: 'string' },
    'stall-ms': { type: 'string' },
    'slow-every': { type: 'string' },
    'slow-ms': { type: 'string' },
  },
});
const blockMs = Number(values.block ?? 0);
const slowEvery = Number(values['slow-every'] ?? 0);
const slowMs = Number(values['slow-ms'] ?? 1000);
let served = 0;
/** The route that blocks the loop (what a stall capture must name). */
function reportRoute(res: ServerResponse) {
  const end = performance.now() + slowMs;
  while (performance.now() < end);
  res.end('report');
}
const server = http.createServer((_req, res) => {
  if (slowEvery > 0 && ++served % slowEvery === 0) return reportRoute(res);
  if (blockMs > 0) {
    const end = performance.now() + blockMs;
    while (performance.now() < end);
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 12 });
  res.end('Hello World!');
});
server.keepAliveTimeout = 65_000;
if (values.protect !== undefined) protect(server, { ...JSON.parse(values.protect), logger: () => {} });
else {
  if (values.timed) timeRequests(server);
  // The pattern most apps have, on both signals (nodescale run sends SIGTERM, pm2 SIGINT).
  const close = () => server.close(() => process.exit(0));
  process.on('SIGTERM', close).on('SIGINT', close);
}
setTimeout(
  () => {
    server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
      console.log(`listening http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      if (values.protect === undefined) process.send?.('ready');
      if (values['stall-at'] !== undefined) {
        setTimeout(() => {
          const end = performance.now() + Number(values['stall-ms'] ?? 1000);
          while (performance.now() < end);
        }, Number(values['stall-at'])).unref();
      }
    });
  },
  Number(values['startup-ms'] ?? 0),
);

/** What protect() cannot do with less: a clock reading on the way in (before any listener), another on the way out. */
function timeRequests(target: Server): void {
  const START = Symbol('start');
  type Timed = ServerResponse & { [START]?: number };
  let seconds = 0;
  let count = 0;
  const emit = target.emit;
  target.emit = function (this: Server, event: string | symbol, _req?: IncomingMessage, res?: Timed): boolean {
    if (event === 'request') res![START] = performance.now();
    // eslint-disable-next-line prefer-rest-params
    return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
  } as typeof target.emit;
  subscribe('http.server.response.finish', (message) => {
    const start = (message as { response: Timed }).response[START];
    if (start === undefined) return;
    seconds += (performance.now() - start) / 1000;
    count++;
  });
  process.on(
    'exit',
    () => count > 0 && console.error(`timed ${count} requests: ${((seconds / count) * 1e6).toFixed(1)} µs on average`),
  );
}
