/**
 * A private Unix socket: its directory is created mode 0700 and must be 0700 and ours; a stale socket file left by a
 * dead process is replaced, a live one is in use; the socket is made mode 0600. Only this user can connect. Used by
 * the admin console and the supervisor's control socket.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';

async function reclaimStale(socketPath: string): Promise<void> {
  try {
    lstatSync(socketPath);
  } catch {
    return;
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
  if (alive) throw new NodescaleError('NS_ERR_ADMIN_IN_USE', `the socket ${socketPath} is in use by another process`);
  unlinkSync(socketPath);
}

/**
 * Creates the socket's directory (0700) if need be, and throws NS_ERR_ADMIN_INSECURE unless it is a directory of
 * mode 0700 owned by this user. Synchronous, so that a constructor (protect()) can refuse an insecure setup at once.
 */
export function checkPrivateDirectory(socketPath: string): void {
  const parent = path.dirname(socketPath);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const stat = lstatSync(parent);
  if (!stat.isDirectory() || (stat.mode & 0o077) !== 0 || (process.getuid && stat.uid !== process.getuid())) {
    throw new NodescaleError(
      'NS_ERR_ADMIN_INSECURE',
      `the socket's directory ${parent} must be a directory of mode 0700 owned by this user (it is ${(stat.mode & 0o777).toString(8)}, uid ${stat.uid})`,
    );
  }
}

export async function listenPrivateSocket(
  socketPath: string,
  onConnection: (socket: net.Socket) => void,
): Promise<net.Server> {
  checkPrivateDirectory(socketPath);
  await reclaimStale(socketPath);
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new NodescaleError('NS_ERR_LISTEN', `socket ${socketPath}: ${error.code ?? error.message}`)),
    );
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return server;
}

export function removeSocket(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // already gone
  }
}
