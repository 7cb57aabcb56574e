/**
 * A delaying TCP relay, for the network delay this machine's kernel cannot add (no netem qdisc): every byte, and the
 * end of each direction (FIN), and a reset, reaches the other side `delayMs` later, in order. Put between a balancer
 * and Node, it opens the window of the keep-alive race: Node's close takes `delayMs` to reach the balancer, which may
 * send a request on the connection meanwhile.
 */
import net from 'node:net';

export interface DelayRelay {
  port: number;
  close(): Promise<void>;
}

/** Forwards `from` to `to`, each chunk and the end `delayMs` late, in order. */
function pipeLate(from: net.Socket, to: net.Socket, delayMs: number): void {
  let last = 0;
  const later = (action: () => void) => {
    last = Math.max(Date.now() + delayMs, last);
    setTimeout(action, last - Date.now());
  };
  from.on('data', (chunk: Buffer) => later(() => !to.destroyed && to.write(chunk)));
  from.on('end', () => later(() => !to.destroyed && to.end()));
  // A reset on one side is a reset on the other, as late.
  from.on('error', () => later(() => to.resetAndDestroy()));
}

export async function startDelayRelay(targetPort: number, delayMs: number): Promise<DelayRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    pipeLate(client, upstream, delayMs);
    pipeLate(upstream, client, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
