/**
 * How a server stops accepting without losing a request on a keep-alive connection, shared by the runtime's graceful
 * shutdown and the supervisor's preload for plain apps (supervisor/drain-preload.ts).
 *
 * Not http.Server#close: since Node 19 it also closes idle keep-alive connections at once, and a client sending on
 * one at that moment gets a reset. Each open connection instead takes its next request (the caller answers it with
 * Connection: close); those still idle after `idleDrainMs` are closed then, and again every 100 ms as others go idle.
 */
import net from 'node:net';
import type { Server } from 'node:http';

/** The default of `shutdown.idleDrainMs`. */
export const IDLE_DRAIN_MS = 1000;

/** Stops accepting; `onClosed` runs once every connection is gone. */
export function drainServer(server: Server, idleDrainMs: number, onClosed?: (error?: Error) => void): void {
  net.Server.prototype.close.call(server, onClosed);
  let sweep: NodeJS.Timeout | undefined;
  const idle = setTimeout(() => {
    server.closeIdleConnections();
    sweep = setInterval(() => server.closeIdleConnections(), 100);
  }, idleDrainMs);
  server.once('close', () => {
    clearTimeout(idle);
    clearInterval(sweep);
  });
}
