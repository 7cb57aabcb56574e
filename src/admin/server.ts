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
import { ADMIN_COMMANDS, EVAL_COMMAND, type CommandContext } from './commands.ts';
import type { AdminOptions, AdminTlsOptions } from '../admin-options.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import type { ConsoleTarget } from './target.ts';
import { answerCommand, serveConnection, unknownCommand, type Connection } from '../socket/connection.ts';
import { MAX_LINE_BYTES, PRE_AUTH_MAX_LINE_BYTES, type AdminRequest } from '../socket/protocol.ts';
import { checkPrivateDirectory, listenPrivateSocket, removeSocket } from '../socket/unix-socket.ts';

export type { AdminOptions, AdminTlsOptions };

export interface AdminAddress {
  socketPath: string | null;
  tcp: { host: string; port: number } | null;
}

const ADMIN_NAMES = [
  'socketPath',
  'dir',
  'tcp',
  'noSocket',
  'token',
  'auditLog',
  'allowEval',
  'authDeadlineMs',
] as const satisfies readonly (keyof AdminOptions)[];

const digest = (text: string) => createHash('sha256').update(text).digest();
const MAX_BAD_MESSAGES = 10;

/**
 * Limits that hold before a connection has authenticated, so that nobody without the token can make the process grow
 * or lock the operator out:
 * - a connection must authenticate within authDeadlineMs (AUTH_DEADLINE_MS) of connecting, however it trickles bytes;
 * - it may send PRE_AUTH_MAX_LINE_BYTES a line (the auth message is tiny);
 * - at most MAX_UNAUTHENTICATED such connections are open: a new one closes the oldest, so a flood cannot keep the
 *   operator's own connection out (it authenticates in its first round trip);
 * - a wrong token is answered after FAILURE_DELAY_MS, then the connection is closed: guesses cost a slot each, at
 *   most MAX_UNAUTHENTICATED a second. Past FAILURE_BUDGET failures in a minute, process-wide, wrong tokens are
 *   answered NS_ERR_ADMIN_RATE_LIMITED and logged once; the right token is still accepted at once. Nothing is kept
 *   per source address, so a guesser sharing the operator's address does not lock the operator out, and no table
 *   grows.
 */
const AUTH_DEADLINE_MS = 10_000;
const MAX_UNAUTHENTICATED = 16;
const FAILURE_DELAY_MS = 1000;
const FAILURE_BUDGET = 30;

export class AdminServer {
  readonly #runtime: ConsoleTarget;
  readonly #options: AdminOptions;
  readonly #tokenDigest: Buffer | null;
  readonly #servers: net.Server[] = [];
  readonly #connections = new Set<net.Socket>();
  /** Connections that have not authenticated yet, oldest first. */
  readonly #unauthenticated = new Set<net.Socket>();
  /** Failed authentications in the current minute, process-wide; when that minute began. */
  #failures = { count: 0, since: 0 };
  #socketPath: string | null = null;
  #tcp: { host: string; port: number } | null = null;

  constructor(runtime: ConsoleTarget, options: AdminOptions) {
    // The console resolves its own options: a name it does not know is a typo, refused with the nearest.
    refuseUnknownOptions(options, ADMIN_NAMES, 'admin.');
    if (options.tcp !== undefined && options.tcp !== null && typeof options.tcp === 'object') {
      refuseUnknownOptions(options.tcp, ['port', 'host', 'tls'], 'admin.tcp.');
      const tls: unknown = options.tcp.tls;
      if (tls !== undefined && tls !== null && typeof tls === 'object')
        refuseUnknownOptions(tls, ['key', 'cert', 'ca', 'requestCert'], 'admin.tcp.tls.');
    }
    this.#runtime = runtime;
    this.#options = options;
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
      throw invalidOption(
        'admin.token',
        'a string of at least 16 characters',
        options.token === undefined ? undefined : '(hidden)',
      );
    }
    this.#tokenDigest = options.token === undefined ? null : digest(options.token);
    const tcp = options.tcp;
    if (tcp !== undefined) {
      if (!tcp.tls?.key || !tcp.tls?.cert) {
        throw new NodescaleError(
          'NS_ERR_ADMIN_INSECURE',
          'the admin console refuses plain TCP: give admin.tcp.tls with a key and a certificate',
        );
      }
      const clientCerts = tcp.tls.requestCert === true && tcp.tls.ca !== undefined;
      if (this.#tokenDigest === null && !clientCerts) {
        throw new NodescaleError(
          'NS_ERR_ADMIN_INSECURE',
          'the admin console refuses TCP without authentication: give admin.token, or admin.tcp.tls.requestCert with a ca',
        );
      }
    }
    if (options.noSocket && tcp === undefined) throw invalidOption('admin.noSocket', 'used only with admin.tcp', true);
    const deadline = options.authDeadlineMs;
    if (deadline !== undefined && (typeof deadline !== 'number' || !(deadline >= 100) || deadline > 600_000)) {
      throw invalidOption('admin.authDeadlineMs', 'a number of ms from 100 to 600000', deadline);
    }
    if (options.allowEval !== undefined && typeof options.allowEval !== 'boolean')
      throw invalidOption('admin.allowEval', 'a boolean', options.allowEval);
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
      {
        key: tcp.tls.key,
        cert: tcp.tls.cert,
        ...(tcp.tls.ca ? { ca: tcp.tls.ca } : {}),
        requestCert: clientCerts,
        rejectUnauthorized: clientCerts,
        minVersion: 'TLSv1.2',
      },
      (socket) => this.#accept(socket, `${socket.remoteAddress}`, clientCerts && socket.authorized),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new NodescaleError('NS_ERR_LISTEN', `admin TCP ${host}:${tcp.port}: ${error.code ?? error.message}`)),
      );
      server.listen(tcp.port, host, () => resolve());
    });
    server.unref();
    this.#servers.push(server);
    this.#tcp = { host, port: (server.address() as net.AddressInfo).port };
  }

  #accept(socket: net.Socket, peer: string, certified: boolean): void {
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    // An idle connection does not hold a slot forever.
    socket.setTimeout(30_000, () => socket.destroy());
    // The socket's file mode is the authentication of the Unix socket; a token, if set, is asked for too.
    let authenticated = this.#tokenDigest === null || certified;
    let deadline: NodeJS.Timeout | undefined;
    if (!authenticated) {
      if (this.#unauthenticated.size >= MAX_UNAUTHENTICATED) this.#unauthenticated.values().next().value?.destroy();
      this.#unauthenticated.add(socket);
      deadline = setTimeout(() => socket.destroy(), this.#options.authDeadlineMs ?? AUTH_DEADLINE_MS);
      socket.on('close', () => {
        clearTimeout(deadline);
        this.#unauthenticated.delete(socket);
      });
    }
    const connection = serveConnection(socket, {
      // Before authentication: short lines, and the first bad message closes the connection.
      maxLineBytes: authenticated ? MAX_LINE_BYTES : PRE_AUTH_MAX_LINE_BYTES,
      maxBadMessages: authenticated ? MAX_BAD_MESSAGES : 1,
      onRequest: (request) => {
        if (!authenticated) {
          // Nothing more is read from a connection that failed: it is answered after the delay, then closed.
          if (!this.#authenticate(request, peer, connection)) return false;
          authenticated = true;
          clearTimeout(deadline);
          this.#unauthenticated.delete(socket);
          connection.setLimits({ maxLineBytes: MAX_LINE_BYTES, maxBadMessages: MAX_BAD_MESSAGES });
          return;
        }
        if (request.cmd === 'auth')
          return connection.send({ id: request.id, ok: true, result: { authenticated: true } });
        socket.setTimeout(0);
        void this.#run({ runtime: this.#runtime, socket, send: connection.send, peer, tcp: peer !== 'unix' }, request);
      },
    });
  }

  /** True for the right token (answered at once); otherwise answers after FAILURE_DELAY_MS and closes the connection. */
  #authenticate({ id, cmd, args }: AdminRequest, peer: string, connection: Connection): boolean {
    const token = cmd === 'auth' && typeof args?.token === 'string' ? args.token : null;
    if (token !== null && timingSafeEqual(digest(token), this.#tokenDigest!)) {
      this.#audit({ peer, cmd: 'auth', ok: true });
      connection.send({ id, ok: true, result: { authenticated: true } });
      return true;
    }
    const now = Date.now();
    if (now - this.#failures.since >= 60_000) this.#failures = { count: 0, since: now };
    const failures = ++this.#failures.count;
    const overBudget = failures > FAILURE_BUDGET;
    if (failures === FAILURE_BUDGET + 1)
      this.#runtime.options.logger('warn', 'admin console: failed authentications over budget', {
        perMinute: FAILURE_BUDGET,
      });
    if (!overBudget)
      this.#runtime.options.logger('warn', 'admin console: failed authentication', {
        peer,
        failuresThisMinute: failures,
      });
    this.#audit({
      peer,
      cmd: 'auth',
      ok: false,
      error: overBudget ? 'NS_ERR_ADMIN_RATE_LIMITED' : 'NS_ERR_ADMIN_AUTH',
    });
    const error = overBudget
      ? {
          code: 'NS_ERR_ADMIN_RATE_LIMITED',
          message: `wrong token, and more than ${FAILURE_BUDGET} failed authentications in the last minute: slow down`,
        }
      : {
          code: 'NS_ERR_ADMIN_AUTH',
          message:
            token === null ? 'authentication required: send {"cmd":"auth","args":{"token":…}} first' : 'wrong token',
        };
    setTimeout(() => {
      connection.send({ id, ok: false, error });
      connection.socket.end();
    }, FAILURE_DELAY_MS).unref();
    return false;
  }

  async #run(ctx: CommandContext, request: AdminRequest): Promise<void> {
    const started = Date.now();
    const name = request.cmd;
    const command =
      ADMIN_COMMANDS.get(name) ?? (name === 'eval' && this.#options.allowEval === true ? EVAL_COMMAND : undefined);
    if (command === undefined) {
      this.#audit({ peer: ctx.peer, cmd: name, ok: false, error: 'NS_ERR_ADMIN_UNKNOWN_COMMAND' });
      return unknownCommand(ctx, request, '"help" lists them');
    }
    const args = request.args ?? {};
    const failed = await answerCommand(ctx, command, ctx, request);
    const ms = Date.now() - started;
    this.#audit(
      failed === null
        ? { peer: ctx.peer, cmd: name, args: command.auditArgs?.(args) ?? args, ok: true, ms }
        : { peer: ctx.peer, cmd: name, ok: false, error: failed, ms },
    );
  }

  #audit(entry: Record<string, unknown>): void {
    const record = { time: new Date().toISOString(), pid: process.pid, ...entry };
    if (this.#options.auditLog !== undefined)
      appendFileSync(this.#options.auditLog, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    else this.#runtime.options.logger('info', 'admin console audit', record);
  }
}
