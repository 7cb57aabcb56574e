/**
 * One NDJSON connection, server side, for both sockets that speak protocol.ts: the admin console (server.ts) and the
 * supervisor's control socket (supervisor/control.ts). Here: the framing, the line limit, counting bad messages and
 * closing after too many, and running a command from a table with its answer. What is theirs: authentication, audit,
 * and the commands themselves.
 */
import type net from 'node:net';
import { NodescaleError, type ErrorCode } from '../errors.ts';
import { encode, LineReader, parseRequest, type AdminMessage, type AdminRequest } from './protocol.ts';

export interface ConnectionOptions {
  /** The longest line read (the rest of a longer one is dropped unread, and answered with an error). */
  maxLineBytes: number;
  /** After this many malformed messages the connection is closed. */
  maxBadMessages: number;
  /**
   * A well-formed request. Returning false stops reading: the rest of what arrived is dropped and the socket is
   * paused (a connection that failed authentication is answered later, then closed).
   */
  onRequest(request: AdminRequest): boolean | void;
}

export interface Connection {
  readonly socket: net.Socket;
  /** Writes one message, unless the socket is gone. */
  send(message: AdminMessage): void;
  /** Changes the limits from now on (a connection that authenticated may send longer lines, and err more). */
  setLimits(limits: { maxLineBytes?: number; maxBadMessages?: number }): void;
}

export function serveConnection(socket: net.Socket, options: ConnectionOptions): Connection {
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  const reader = new LineReader(options.maxLineBytes);
  let maxBad = options.maxBadMessages;
  let bad = 0;
  const connection: Connection = {
    socket,
    send: (message) => {
      if (!socket.destroyed) socket.write(encode(message));
    },
    setLimits: ({ maxLineBytes, maxBadMessages }) => {
      if (maxLineBytes !== undefined) reader.max = maxLineBytes;
      if (maxBadMessages !== undefined) maxBad = maxBadMessages;
    },
  };
  const refuse = (id: number | null, message: string) => {
    connection.send({ id: id ?? -1, ok: false, error: { code: 'NS_ERR_ADMIN_BAD_MESSAGE', message } });
    if (++bad >= maxBad) socket.destroy();
  };
  socket.on('data', (chunk: string) => {
    for (const line of reader.push(chunk)) {
      if (typeof line !== 'string') {
        refuse(null, line.message);
        continue;
      }
      if (line.trim() === '') continue;
      const request = parseRequest(line);
      if ('error' in request) {
        refuse(request.id, request.error);
        continue;
      }
      if (options.onRequest(request) === false) {
        socket.pause();
        return;
      }
    }
  });
  return connection;
}

/** A command of a socket's table: what it does with its context and arguments; its resolved value is the result. */
export interface SocketCommand<Context> {
  run(context: Context, id: number, args: Record<string, unknown>): unknown;
}

/**
 * Runs `command` and answers: its result, or its error with the error's code (a NodescaleError's own, else
 * `failureCode`). Returns the error code, or null when it succeeded.
 */
export async function answerCommand<Context>(
  connection: Pick<Connection, 'send'>,
  command: SocketCommand<Context>,
  context: Context,
  request: AdminRequest,
  failureCode: ErrorCode = 'NS_ERR_ADMIN_COMMAND_FAILED',
): Promise<ErrorCode | null> {
  const { id } = request;
  try {
    const result = await command.run(context, id, request.args ?? {});
    connection.send({ id, ok: true, ...(result === undefined ? {} : { result }) });
    return null;
  } catch (error) {
    const code = error instanceof NodescaleError ? error.code : failureCode;
    connection.send({ id, ok: false, error: { code, message: (error as Error).message } });
    return code;
  }
}

/** The answer to a command no table has. */
export function unknownCommand(connection: Pick<Connection, 'send'>, request: AdminRequest, hint: string): void {
  connection.send({
    id: request.id,
    ok: false,
    error: { code: 'NS_ERR_ADMIN_UNKNOWN_COMMAND', message: `unknown command "${request.cmd}"; ${hint}` },
  });
}
