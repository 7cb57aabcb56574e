/**
 * The admin console's server: closed by default, authenticated always.
 *
 * - A Unix socket by default, in a directory of mode 0700 owned by this user, the socket itself mode 0600: only this
 *   user can connect (as with docker.sock). A directory that others can read, or that someone else owns, is refused.
 * - TCP only with TLS and authentication (a token, or client certificates with requestCert + ca). It refuses to start
 *   without both, and binds 127.0.0.1 unless told otherwise.
 * - Tokens are compared in constant time (of their SHA-256 digests). Failed attempts lock the peer out for a time that
 *   doubles with each failure (1 s … 60 s), and are logged. Every command is written to the audit log.
 * - There is no eval: the commands are a fixed list (commands.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { invalidOption, NodescaleError } from '../errors.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { COMMANDS, EVAL_COMMAND, type CommandContext } from './commands.ts';
import { encode, LineReader, LineTooLongError, parseRequest, type AdminMessage } from './protocol.ts';
import { checkPrivateDirectory, listenPrivateSocket, removeSocket } from './unix-socket.ts';

export interface AdminTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA of client certificates; with requestCert, a verified client certificate authenticates. */
  ca?: string | Buffer;
  requestCert?: boolean;
}

export interface AdminOptions {
  /** The Unix socket. Default <dir>/nodescale-<pid>.sock. */
  socketPath?: string;
  /** Directory of the default socket, created mode 0700. Default <tmpdir>/nodescale-<uid>. */
  dir?: string;
  /** A TCP listener besides (or instead of) the socket: needs tls and a token or client certificates. */
  tcp?: { port: number; host?: string; tls: AdminTlsOptions };
  /** Disable the Unix socket (only with tcp). Default false. */
  noSocket?: boolean;
  /** Shared secret: required on TCP unless client certificates authenticate; optional on the socket. */
  token?: string;
  /** Audit log file (JSON lines, mode 0600); default: the runtime's logger. */
  auditLog?: string;
  /**
   * Add an `eval` command that runs JavaScript in the process: for debugging only, on the Unix socket only (refused
   * over TCP whatever this says), every use audited. Default false: there is no eval.
   */
  allowEval?: boolean;
}

export interface AdminAddress {
  socketPath: string | null;
  tcp: { host: string; port: number } | null;
}

const digest = (text: string) => createHash('sha256').update(text).digest();
const MAX_BAD_MESSAGES = 10;

interface Lockout {
  failures: number;
  until: number;
}

export class AdminServer {
  readonly #runtime: Runtime;
  readonly #options: AdminOptions;
  readonly #tokenDigest: Buffer | null;
  readonly #servers: net.Server[] = [];
  readonly #connections = new Set<net.Socket>();
  readonly #lockouts = new Map<string, Lockout>();
  #socketPath: string | null = null;
  #tcp: { host: string; port: number } | null = null;

  constructor(runtime: Runtime, options: AdminOptions) {
    this.#runtime = runtime;
    this.#options = options;
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
      throw invalidOption('admin.token', 'a string of at least 16 characters', options.token === undefined ? undefined : '(hidden)');
    }
    this.#tokenDigest = options.token === undefined ? null : digest(options.token);
    const tcp = options.tcp;
    if (tcp !== undefined) {
      if (!tcp.tls?.key || !tcp.tls?.cert) {
        throw new NodescaleError('NS_ERR_ADMIN_INSECURE', 'the admin console refuses plain TCP: give admin.tcp.tls with a key and a certificate');
      }
      const clientCerts = tcp.tls.requestCert === true && tcp.tls.ca !== undefined;
      if (this.#tokenDigest === null && !clientCerts) {
        throw new NodescaleError('NS_ERR_ADMIN_INSECURE', 'the admin console refuses TCP without authentication: give admin.token, or admin.tcp.tls.requestCert with a ca');
      }
    }
    if (options.noSocket && tcp === undefined) throw invalidOption('admin.noSocket', 'used only with admin.tcp', true);
    if (options.allowEval !== undefined && typeof options.allowEval !== 'boolean') throw invalidOption('admin.allowEval', 'a boolean', options.allowEval);
    // A socket in a directory others can reach is refused here, by protect() itself, not logged later.
    if (!options.noSocket) checkPrivateDirectory(this.#plannedSocketPath());
  }

  get address(): AdminAddress {
    return { socketPath: this.#socketPath, tcp: this.#tcp };
  }

  async listen(): Promise<AdminAddress> {
    if (!this.#options.noSocket) await this.#listenSocket();
    if (this.#options.tcp !== undefined) await this.#listenTcp();
    return this.address;
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    await Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    if (this.#socketPath !== null) removeSocket(this.#socketPath);
  }

  #plannedSocketPath(): string {
    const dir = this.#options.dir ?? path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`);
    return this.#options.socketPath ?? path.join(dir, `nodescale-${process.pid}.sock`);
  }

  async #listenSocket(): Promise<void> {
    const socketPath = this.#plannedSocketPath();
    const server = await listenPrivateSocket(socketPath, (socket) => this.#accept(socket, 'unix', false));
    server.unref();
    this.#servers.push(server);
    this.#socketPath = socketPath;
  }

  async #listenTcp(): Promise<void> {
    const tcp = this.#options.tcp!;
    const host = tcp.host ?? '127.0.0.1';
    const clientCerts = tcp.tls.requestCert === true && tcp.tls.ca !== undefined;
    const server = tls.createServer(
      { key: tcp.tls.key, cert: tcp.tls.cert, ...(tcp.tls.ca ? { ca: tcp.tls.ca } : {}), requestCert: clientCerts, rejectUnauthorized: clientCerts, minVersion: 'TLSv1.2' },
      (socket) => this.#accept(socket, `${socket.remoteAddress}`, clientCerts && socket.authorized),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new NodescaleError('NS_ERR_LISTEN', `admin TCP ${host}:${tcp.port}: ${error.code ?? error.message}`)));
      server.listen(tcp.port, host, () => resolve());
    });
    server.unref();
    this.#servers.push(server);
    this.#tcp = { host, port: (server.address() as net.AddressInfo).port };
  }

  #accept(socket: net.Socket, peer: string, certified: boolean): void {
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    // An idle, unauthenticated connection does not hold a slot forever.
    socket.setTimeout(30_000, () => socket.destroy());
    // The socket's file mode is the authentication of the Unix socket; a token, if set, is asked for too.
    const needsToken = this.#tokenDigest !== null && !certified;
    let authenticated = !needsToken;
    let bad = 0;
    const send = (message: AdminMessage) => {
      if (!socket.destroyed) socket.write(encode(message));
    };
    const ctx: CommandContext = { runtime: this.#runtime, socket, send, peer, tcp: peer !== 'unix' };
    const reader = new LineReader();
    socket.on('data', (chunk: string) => {
      for (const line of reader.push(chunk)) {
        if (line instanceof LineTooLongError) {
          send({ id: -1, ok: false, error: { code: 'NS_ERR_ADMIN_BAD_MESSAGE', message: line.message } });
          if (++bad >= MAX_BAD_MESSAGES || !authenticated) socket.destroy();
          continue;
        }
        if (line.trim() === '') continue;
        const request = parseRequest(line);
        if ('error' in request) {
          send({ id: request.id ?? -1, ok: false, error: { code: 'NS_ERR_ADMIN_BAD_MESSAGE', message: request.error } });
          if (++bad >= MAX_BAD_MESSAGES || !authenticated) socket.destroy();
          continue;
        }
        if (!authenticated) {
          authenticated = this.#authenticate(request.cmd, request.args, peer, request.id, send);
          if (!authenticated) socket.end();
          continue;
        }
        if (request.cmd === 'auth') {
          send({ id: request.id, ok: true, result: { authenticated: true } });
          continue;
        }
        socket.setTimeout(0);
        void this.#run(ctx, request.id, request.cmd, request.args ?? {});
      }
    });
  }

  #authenticate(cmd: string, args: Record<string, unknown> | undefined, peer: string, id: number, send: (m: AdminMessage) => void): boolean {
    const now = Date.now();
    const lockout = this.#lockouts.get(peer);
    if (lockout !== undefined && now < lockout.until) {
      this.#audit({ peer, cmd: 'auth', ok: false, error: 'NS_ERR_ADMIN_RATE_LIMITED' });
      send({ id, ok: false, error: { code: 'NS_ERR_ADMIN_RATE_LIMITED', message: `too many failed attempts: try again in ${Math.ceil((lockout.until - now) / 1000)} s` } });
      return false;
    }
    const token = cmd === 'auth' && typeof args?.token === 'string' ? args.token : null;
    const ok = token !== null && timingSafeEqual(digest(token), this.#tokenDigest!);
    if (ok) {
      this.#lockouts.delete(peer);
      this.#audit({ peer, cmd: 'auth', ok: true });
      send({ id, ok: true, result: { authenticated: true } });
      return true;
    }
    const failures = (lockout?.failures ?? 0) + 1;
    this.#lockouts.set(peer, { failures, until: now + Math.min(60_000, 1000 * 2 ** (failures - 1)) });
    const message = token === null ? 'authentication required: send {"cmd":"auth","args":{"token":…}} first' : 'wrong token';
    this.#runtime.options.logger('warn', 'admin console: failed authentication', { peer, failures });
    this.#audit({ peer, cmd: 'auth', ok: false, error: 'NS_ERR_ADMIN_AUTH' });
    send({ id, ok: false, error: { code: 'NS_ERR_ADMIN_AUTH', message } });
    return false;
  }

  async #run(ctx: CommandContext, id: number, name: string, args: Record<string, unknown>): Promise<void> {
    const started = Date.now();
    const command = COMMANDS.get(name) ?? (name === 'eval' && this.#options.allowEval === true ? EVAL_COMMAND : undefined);
    if (command === undefined) {
      this.#audit({ peer: ctx.peer, cmd: name, ok: false, error: 'NS_ERR_ADMIN_UNKNOWN_COMMAND' });
      ctx.send({ id, ok: false, error: { code: 'NS_ERR_ADMIN_UNKNOWN_COMMAND', message: `unknown command "${name}"; "help" lists them` } });
      return;
    }
    try {
      const result = await command.run(ctx, id, args);
      ctx.send({ id, ok: true, ...(result === undefined ? {} : { result }) });
      this.#audit({ peer: ctx.peer, cmd: name, args: command.auditArgs?.(args) ?? args, ok: true, ms: Date.now() - started });
    } catch (error) {
      const code = error instanceof NodescaleError ? error.code : 'NS_ERR_ADMIN_COMMAND_FAILED';
      ctx.send({ id, ok: false, error: { code, message: (error as Error).message } });
      this.#audit({ peer: ctx.peer, cmd: name, ok: false, error: code, ms: Date.now() - started });
    }
  }

  #audit(entry: Record<string, unknown>): void {
    const record = { time: new Date().toISOString(), pid: process.pid, ...entry };
    if (this.#options.auditLog !== undefined) appendFileSync(this.#options.auditLog, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    else this.#runtime.options.logger('info', 'admin console audit', record);
  }
}
