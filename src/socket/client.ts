/**
 * The client of nodescale's NDJSON sockets (the admin console, the supervisor's control socket): one connection,
 * requests by id, streamed chunks and events.
 */
import { lstatSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { ERROR_CODES, NodescaleError, type ErrorCode } from '../errors.ts';
import { encode, LineReader, type AdminMessage } from './protocol.ts';

export interface ConnectOptions {
  token?: string;
  /** TLS: the CA that signed the server's certificate; client certificate and key for mutual TLS. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  timeoutMs?: number;
}

export interface RequestHandlers {
  onChunk?(bytes: Buffer): void;
  onEvent?(event: unknown): void;
}

interface Pending extends RequestHandlers {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** A socket path, or host:port. */
export function isSocketTarget(target: string): boolean {
  return target.includes('/') || target.endsWith('.sock');
}

/** What to do about a TLS verification failure, in a person's words. */
const TLS_HINTS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed: pass it as --ca FILE',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate is signed by a CA this machine does not trust: pass that CA as --ca FILE',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    'its certificate is signed by a CA this machine does not trust: pass that CA as --ca FILE',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    'its certificate is signed by a CA this machine does not trust: pass that CA as --ca FILE',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate does not name that host: connect by a name or address it lists',
  CERT_HAS_EXPIRED: 'its certificate has expired',
};

function connectError(target: string, error: NodeJS.ErrnoException): NodescaleError {
  const hint = error.code === undefined ? undefined : TLS_HINTS[error.code];
  return new NodescaleError(
    'NS_ERR_ADMIN_CONNECT',
    `cannot reach the admin console at ${target}: ${hint === undefined ? (error.code ?? error.message) : `${hint} (${error.code})`}`,
    { cause: error },
  );
}

export class AdminClient {
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Error | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const reader = new LineReader(64 * 1024 * 1024);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of reader.push(chunk))
        if (typeof line === 'string' && line !== '') this.#dispatch(JSON.parse(line) as AdminMessage);
    });
    socket.on('close', () =>
      this.#fail(new NodescaleError('NS_ERR_ADMIN_CONNECT', 'the admin console closed the connection')),
    );
    socket.on('error', (error) => this.#fail(connectError('the target', error)));
  }

  static async connect(target: string, options: ConnectOptions = {}): Promise<AdminClient> {
    let socket: net.Socket;
    if (isSocketTarget(target)) {
      let stat;
      try {
        stat = lstatSync(target);
      } catch (error) {
        throw connectError(target, error as NodeJS.ErrnoException);
      }
      if (!stat.isSocket()) throw new NodescaleError('NS_ERR_ADMIN_CONNECT', `${target} is not a socket`);
      if ((stat.mode & 0o077) !== 0) {
        throw new NodescaleError(
          'NS_ERR_ADMIN_INSECURE',
          `refusing ${target}: its mode is ${(stat.mode & 0o777).toString(8)}, others could use it too (the console's socket is 0600)`,
        );
      }
      socket = net.connect(target);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (error) => reject(connectError(target, error)));
      });
    } else {
      const colon = target.lastIndexOf(':');
      const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
      const port = Number(target.slice(colon + 1));
      if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new NodescaleError('NS_ERR_USAGE', `"${target}" is neither a socket path nor host:port`);
      }
      const secure = tls.connect({
        host,
        port,
        servername: net.isIP(host) ? undefined : host,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        minVersion: 'TLSv1.2',
      });
      socket = secure;
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', (error) => reject(connectError(target, error)));
      });
    }
    const client = new AdminClient(socket);
    if (options.token !== undefined) await client.request('auth', { token: options.token });
    return client;
  }

  /** Sends a command; resolves with its result, rejects with the server's error code. */
  request(cmd: string, args: Record<string, unknown> = {}, handlers: RequestHandlers = {}): Promise<unknown> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const id = cmd === 'auth' ? 0 : this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, ...handlers });
      this.#socket.write(encode({ id, cmd, args }));
    });
  }

  /** The id the next request will get (to `unwatch` a watch). */
  get nextId(): number {
    return this.#nextId;
  }

  close(): void {
    this.#socket.end();
  }

  /** Closes at once, without waiting for the peer's end (one that is frozen never sends it). */
  destroy(): void {
    this.#socket.destroy();
  }

  #dispatch(message: AdminMessage): void {
    const pending = this.#pending.get(message.id);
    if ('chunk' in message) return pending?.onChunk?.(Buffer.from(message.chunk, 'base64'));
    if ('event' in message) return pending?.onEvent?.(message.event);
    if (message.ok) {
      this.#pending.delete(message.id);
      return pending?.resolve(message.result);
    }
    const code = (message.error.code in ERROR_CODES ? message.error.code : 'NS_ERR_ADMIN_COMMAND_FAILED') as ErrorCode;
    const error = new NodescaleError(code, message.error.message);
    if (pending === undefined) {
      // An error for no request (a malformed line): fail everything waiting.
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
      return;
    }
    this.#pending.delete(message.id);
    pending.reject(error);
  }

  #fail(error: Error): void {
    this.#closed ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
