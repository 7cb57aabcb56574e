/**
 * A bench target: node:http answering "Hello World!", optionally after blocking the loop for --block ms (a CPU-bound
 * route), optionally protected by nodescale/runtime with the JSON options given after --protect.
 *   node bench/servers/http.ts [--port 0] [--block 5] [--protect '{"overload":{"maxLagMs":10}}'] [--startup-ms 0]
 * --startup-ms: how long the app takes to get ready (connecting to its database, say) before it listens.
 * As a cluster worker it says ready (process.send('ready')) once it listens: `nodescale run` and pm2's wait_ready.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { protect } from 'nodescale/runtime';

const { values } = parseArgs({ options: { port: { type: 'string' }, block: { type: 'string' }, protect: { type: 'string' }, 'startup-ms': { type: 'string' } } });
const blockMs = Number(values.block ?? 0);
const server = http.createServer((_req, res) => {
  if (blockMs > 0) {
    const end = performance.now() + blockMs;
    while (performance.now() < end);
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 12 });
  res.end('Hello World!');
});
server.keepAliveTimeout = 65_000;
if (values.protect !== undefined) protect(server, { ...JSON.parse(values.protect), logger: () => {} });
else process.on('SIGTERM', () => server.close(() => process.exit(0))).on('SIGINT', () => process.exit(0));
setTimeout(() => {
  server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
    console.log(`listening http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    if (values.protect === undefined) process.send?.('ready');
  });
}, Number(values['startup-ms'] ?? 0));
