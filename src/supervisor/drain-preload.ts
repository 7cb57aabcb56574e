/**
 * Preloaded into every worker of `nodescale run` (`node --import`, unless `--no-http-drain`): a plain node:http app
 * drains on SIGTERM the way nodescale/runtime does, so a reload or a stop loses none of its requests.
 *
 * The pattern most apps have, `process.on('SIGTERM', () => server.close(() => process.exit(0)))`, loses requests on
 * keep-alive connections: since Node 19 `server.close()` also closes idle keep-alive sockets at once, and a client
 * that sends on one at that moment gets a reset; responses in flight keep their connection open, so the client sends
 * its next request to a worker that is going away. From the SIGTERM on, this module:
 * - answers every response not yet sent with `Connection: close`, so each client leaves the connection after its
 *   current request and reconnects (node:cluster sends it to another worker);
 * - makes `server.close()` stop accepting without closing idle connections at once: each takes its next request
 *   (answered with `Connection: close`), and those still idle after `shutdown.idleDrainMs` (1 s) are closed then,
 *   and again every 100 ms as others go idle;
 * - if the app has no SIGTERM handler of its own, closes its servers that way and exits 0 once they are closed
 *   (the supervisor's --grace still bounds it).
 * Nothing is patched before the signal: the request path costs nothing until then. An app using nodescale/runtime
 * drains through the runtime; this changes nothing for it.
 *
 * It also answers the supervisor's requests:
 * - ServersRequest: each listening server's timeouts as they are now (an app may set them after listen()), for
 *   `nodescale doctor --name APP`;
 * - ParkRequest: `park` refuses new connections (the primary hands them to the other workers), answers what is in
 *   flight with Connection: close and closes idle connections as the drain does, and stays alive; `unpark` accepts
 *   again. The previous generation is parked during a reload's probation, to roll back to.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {
  isParkRequest,
  isServersRequest,
  MAX_SERVERS_ANSWERED,
  tellSupervisor,
  type HttpServerTimeouts,
} from '../ipc.ts';
import { drainServer, IDLE_DRAIN_MS } from '../runtime/drain-server.ts';

type AnyServer = http.Server | https.Server;

const servers = new Set<AnyServer>();
for (const proto of [http.Server.prototype, https.Server.prototype] as AnyServer[]) {
  const listen = proto.listen as (...args: unknown[]) => AnyServer;
  proto.listen = function (this: AnyServer, ...args: unknown[]) {
    servers.add(this);
    this.once('listening', answerWhileListening);
    this.once('close', () => {
      servers.delete(this);
      answerWhileListening();
    });
    return listen.apply(this, args);
  } as typeof proto.listen;
}

function describe(server: AnyServer): HttpServerTimeouts {
  const address = server.address();
  const buffer = (server as { keepAliveTimeoutBuffer?: unknown }).keepAliveTimeoutBuffer;
  return {
    address:
      address === null
        ? ''
        : typeof address === 'string'
          ? address
          : `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    tls: server instanceof https.Server,
    keepAliveTimeoutMs: server.keepAliveTimeout,
    keepAliveTimeoutBufferMs: typeof buffer === 'number' ? buffer : null,
    headersTimeoutMs: server.headersTimeout,
    requestTimeoutMs: server.requestTimeout,
  };
}

function answer(message: unknown): void {
  if (isServersRequest(message)) {
    const listening = [...servers].filter((server) => server.listening).slice(0, MAX_SERVERS_ANSWERED);
    tellSupervisor({ nodescale: 'servers', id: message.id, servers: listening.map(describe) });
  } else if (isParkRequest(message)) {
    const { id } = message;
    if (message.nodescale === 'park') {
      park();
      tellSupervisor({ nodescale: 'parked', id });
    } else if (message.nodescale === 'unpark') {
      unpark();
      tellSupervisor({ nodescale: 'unparked', id });
    } else if (message.nodescale === 'leave') void leave().then(() => tellSupervisor({ nodescale: 'left', id }));
    // Every offer of a connection the primary sent before it took our leave came before this on the channel, and
    // was refused (lib/internal/cluster/child.js answers offers for a closed server): none is lost at our exit.
    else tellSupervisor({ nodescale: 'flushed', id });
  }
}

/**
 * Parking is maxConnections 0, not closing the server: node:cluster's primary then offers each new connection to
 * this worker, is refused, and hands it to another (lib/internal/cluster/child.js answers `accepted: false`), so the
 * worker stays a member of the round-robin handle. Closing would take it out, and when every new worker then crashed
 * at once the handle would close with connections still in flight to them: never answered, never closed (measured
 * here; nodejs/node#21746). With only parked workers left, a connection waits in the primary until one is unparked.
 */
const parkedServers = new Map<AnyServer, { maxConnections: number; idle: NodeJS.Timeout; sweep?: NodeJS.Timeout }>();
let parked = false;

function park(): void {
  if (parked) return;
  parked = true;
  closeConnectionsOnAnswer();
  for (const server of [...servers].filter((s) => s.listening)) {
    const entry: { maxConnections: number; idle: NodeJS.Timeout; sweep?: NodeJS.Timeout } = {
      maxConnections: server.maxConnections,
      // Idle keep-alive connections are closed as the drain closes them: each may take its next request first.
      idle: setTimeout(() => {
        server.closeIdleConnections();
        entry.sweep = setInterval(() => server.closeIdleConnections(), 100);
      }, IDLE_DRAIN_MS),
    };
    server.maxConnections = 0;
    parkedServers.set(server, entry);
  }
}

function unpark(): void {
  parked = false;
  for (const [server, { maxConnections, idle, sweep }] of parkedServers) {
    clearTimeout(idle);
    clearInterval(sweep);
    server.maxConnections = maxConnections;
  }
  parkedServers.clear();
}

/**
 * A parked worker about to be stopped leaves the round-robin handle first (net close: node:cluster's primary offers
 * it nothing more), and is answered once its connections are done. Stopped while still a member, an offer in flight
 * at its exit would be lost: the primary keeps such a connection open and never answers it.
 */
function leave(): Promise<void> {
  return Promise.all(
    [...parkedServers.keys()]
      .filter((server) => server.listening)
      .map((server) => new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()))),
  ).then(() => {});
}

/**
 * Listens for the supervisor's requests only while a server listens: a 'message' listener keeps the IPC channel
 * referenced, and a plain app with nothing listening must exit when it would have without us.
 */
let answering = false;
function answerWhileListening(): void {
  const listening = [...servers].some((server) => server.listening);
  if (listening === answering) return;
  answering = listening;
  if (listening) process.on('message', answer);
  else process.off('message', answer);
}

let draining = false;

function drainClose(this: AnyServer, callback?: (error?: Error) => void): AnyServer {
  drainServer(this, IDLE_DRAIN_MS, callback);
  return this;
}

/** From now on, while draining or parked, every answer not yet begun says Connection: close. */
let responsesPatched = false;
function closeConnectionsOnAnswer(): void {
  if (responsesPatched) return;
  responsesPatched = true;
  const writeHead = http.ServerResponse.prototype.writeHead as (...args: unknown[]) => http.ServerResponse;
  // res.end() without writeHead() comes here too (ServerResponse#_implicitHeader calls writeHead).
  http.ServerResponse.prototype.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
    if ((draining || parked) && !this.headersSent) {
      this.shouldKeepAlive = false;
      if (!this.hasHeader('connection')) this.setHeader('connection', 'close');
    }
    return writeHead.apply(this, args);
  } as typeof http.ServerResponse.prototype.writeHead;
}

function beginDrain(): void {
  draining = true;
  closeConnectionsOnAnswer();
  for (const proto of [http.Server.prototype, https.Server.prototype]) proto.close = drainClose as typeof proto.close;
}

process.on('SIGTERM', function onTerm() {
  if (draining) return;
  beginDrain();
  // The app's own SIGTERM handlers run in this same emit. With none (only this one), a SIGTERM would have ended the
  // process at once: drain its servers instead, then exit.
  if (process.listeners('SIGTERM').some((listener) => listener !== onTerm)) return;
  const open = [...servers].filter((server) => server.listening);
  let left = open.length;
  if (left === 0) process.exit(0);
  for (const server of open) server.close(() => --left === 0 && process.exit(0));
});
