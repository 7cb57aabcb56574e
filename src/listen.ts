/**
 * Listening on a host and port, with one error for every server nodescale starts: NS_ERR_LISTEN, naming the server,
 * the address and why (`the corpus cannot listen on 127.0.0.1:8080: EADDRINUSE`).
 */
import type net from 'node:net';
import { NodescaleError } from './errors.ts';

export function listen(server: net.Server, port: number, host: string, what: string): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        new NodescaleError(
          'NS_ERR_LISTEN',
          `${what} cannot listen on ${host}:${port}: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

/** `http://host:port` of a listening address, IPv6 in brackets. */
export function origin(address: net.AddressInfo): string {
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}
