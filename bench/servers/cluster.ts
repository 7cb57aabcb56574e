/**
 * A bare node:cluster primary: N workers of bench/servers/http.ts sharing a port, nothing else. The baseline that
 * `nodescale run` is measured against.
 *   node bench/servers/cluster.ts --workers 2 --port 8080
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { workers: { type: 'string' }, port: { type: 'string' } } });
cluster.setupPrimary({
  exec: new URL('./http.ts', import.meta.url).pathname,
  args: ['--port', values.port ?? '0'],
  silent: true,
});
const workers = Number(values.workers ?? 2);
let listening = 0;
for (let i = 0; i < workers; i++) {
  const worker = cluster.fork();
  worker.process.stdout!.on('data', (chunk: Buffer) => {
    // Announce once every worker listens, as `nodescale run` does once every worker is ready.
    if (/listening/.test(chunk.toString()) && ++listening === workers) console.log(chunk.toString().trim());
  });
}
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
  process.exit(0);
});
