/**
 * The admin console's options: what the runtime's options (`admin`) and the console (src/admin/) agree on, as
 * ipc.ts is what processes agree on. Types only: the console checks them (admin/server.ts), the runtime passes them
 * on, and src/protect/ opens the console with them.
 */
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
  /** How long a connection that must authenticate may take to, from connecting (ms). Default 10 000. */
  authDeadlineMs?: number;
}
