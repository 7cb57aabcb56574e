/**
 * The lab's link between regions, where this machine's kernel cannot delay packets (no `netem` qdisc): a delaying
 * TCP relay. A region other than the first has a relay host (`r<r>-wan`) holding one address of that region for each
 * host of the shared tier (brokers, Redis, the corpus); the region's hosts know the shared tier's names by those
 * addresses (their /etc/hosts), so what they send to it crosses the relay, and what comes back too. Every byte, each
 * direction's end (FIN) and a reset reach the other side half the added round trip later, in order; the round trip
 * is set at run time (`lab fault latency region2 40ms`) over a control port, and 0 is no delay.
 *
 * Run as a process in the relay host's namespace (main(), below): its routes in NODESCALE_WAN_ROUTES, JSON
 * [{ listen: { host, port }, target: { host, port } }], and its control address in NODESCALE_WAN_CONTROL (host:port):
 * `GET /latency` answers { rttMs }, `PUT /latency?rttMs=N` sets it. Ready once it prints "wan relay: ready".
 */
import http from 'node:http';
import net from 'node:net';

export interface WanRoute {
  listen: { host: string; port: number };
  target: { host: string; port: number };
}

export const MAX_RTT_MS = 10_000;

/** Forwards `from` to `to`, each chunk and the end `delay()` late, in order. */
function pipeLate(from: net.Socket, to: net.Socket, delay: () => number): void {
  let last = 0;
  const later = (action: () => void) => {
    const ms = delay();
    if (ms === 0 && last <= Date.now()) return action();
    last = Math.max(Date.now() + ms, last);
    setTimeout(action, last - Date.now());
  };
  from.on('data', (chunk: Buffer) => later(() => !to.destroyed && to.write(chunk)));
  from.on('end', () => later(() => !to.destroyed && to.end()));
  // A reset on one side is a reset on the other, as late.
  from.on('error', () => later(() => to.resetAndDestroy()));
}

export async function startWanRelay(
  routes: readonly WanRoute[],
  control: { host: string; port: number },
): Promise<{ close(): Promise<void> }> {
  let rttMs = 0;
  const oneWay = () => rttMs / 2;
  const sockets = new Set<net.Socket>();
  const servers = routes.map(({ target }) =>
    net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      const upstream = net.connect({ ...target, allowHalfOpen: true, noDelay: true });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      }
      pipeLate(client, upstream, oneWay);
      pipeLate(upstream, client, oneWay);
    }),
  );
  const controller = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== '/latency') return res.writeHead(404).end();
    if (req.method === 'PUT') {
      const value = Number(url.searchParams.get('rttMs'));
      if (!Number.isInteger(value) || value < 0 || value > MAX_RTT_MS)
        return res.writeHead(400).end(`rttMs: a whole number of ms, 0 to ${MAX_RTT_MS}`);
      rttMs = value;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rttMs }));
  });
  const listen = (server: net.Server, at: { host: string; port: number }) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => resolve());
    });
  await Promise.all(routes.map((route, i) => listen(servers[i]!, route.listen)));
  await listen(controller, control);
  return {
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([...servers, controller].map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}

/** The relay host's process (see the file's comment). */
export async function main(env = process.env): Promise<void> {
  const routes = JSON.parse(env.NODESCALE_WAN_ROUTES ?? '[]') as WanRoute[];
  const [host, port] = (env.NODESCALE_WAN_CONTROL ?? '').split(':');
  await startWanRelay(routes, { host: host!, port: Number(port) });
  process.stdout.write('wan relay: ready\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
