/**
 * Every error nodescale raises, with its stable code.
 *
 * A code never changes meaning and is never reused. docs/errors.md lists each one (a test keeps the two in step).
 * `kind` decides the CLI's exit code: 'usage' exits 2 (the command line was wrong), 'failure' exits 1. 'http' codes name
 * the error in the body of an HTTP response (`{"error":{"code":…}}`), with the `status` declared beside the code
 * (fastify's createError(code, message, statusCode)): a server answers any NodescaleError the same way, without a
 * table of its own. Some are thrown to library callers too (compute, fetch), and exit 1 from the CLI. `retryable`
 * declared with a code is what an error of it says by default (the same call may succeed if tried again unchanged);
 * a throw site says otherwise only where the same code means another thing (a timeout reported by a compute service:
 * its task used its time there).
 */

export type ErrorKind = 'usage' | 'failure' | 'http';

export const ERROR_CODES = {
  NS_ERR_USAGE: {
    kind: 'usage',
    summary: 'The command line is malformed: an unknown flag, a missing argument, a flag without its value.',
  },
  NS_ERR_UNKNOWN_COMMAND: { kind: 'usage', summary: 'No nodescale command has that name.' },
  NS_ERR_INVALID_OPTION: {
    kind: 'usage',
    summary:
      'An option has a value of the wrong type or out of its range; the message names the option and what it expects.',
  },
  NS_ERR_INVALID_URL: {
    kind: 'usage',
    summary: 'The target URL cannot be parsed, or uses a scheme nodescale does not load-test (http: and https: are).',
  },
  NS_ERR_BODY_FILE: { kind: 'usage', summary: 'The file named by --body-file cannot be read.' },
  NS_ERR_REQUESTS_FILE: {
    kind: 'usage',
    summary:
      'A requests file (bench --requests) cannot be read, is not valid JSON or NDJSON, or has a bad entry: an unknown field, a bad method, a URL of another origin, a body too big.',
  },
  NS_ERR_DATA_FILE: {
    kind: 'usage',
    summary:
      'A data file (bench --data) cannot be read or is not JSON Lines of objects, or a {{field}} placeholder has no value in a row.',
  },
  NS_ERR_THRESHOLD: {
    kind: 'usage',
    summary:
      "An --assert threshold does not parse: it looks like 'p99<50ms', 'errors=0', 'rps>=1000', 'status.5xx<1%'.",
  },
  NS_ERR_THRESHOLD_FAILED: {
    kind: 'failure',
    summary: 'A run ended and at least one --assert threshold failed; each failed one is printed on its own line.',
  },
  NS_ERR_MERGE: {
    kind: 'usage',
    summary:
      'nodescale merge was given a file that is not a bench --json result of this format, has no histogram, or has another target or timeout range.',
  },
  NS_ERR_LAB: {
    kind: 'failure',
    summary:
      'The fleet lab cannot be built here: not root, ip netns not permitted, every lab slot in use, or a bad host list.',
  },
  NS_ERR_TARGET_TLS: {
    kind: 'failure',
    summary:
      "The TLS handshake with an https: target failed on every connection (a certificate not trusted, another host's certificate, no common protocol).",
  },
  NS_ERR_NODE_VERSION: { kind: 'failure', summary: 'The running Node.js is older than nodescale needs (22.18).' },
  NS_ERR_TARGET_UNREACHABLE: {
    kind: 'failure',
    summary: 'No connection to the target could be made (refused, no route, DNS failure).',
  },
  NS_ERR_TARGET_NOT_HTTP: {
    kind: 'failure',
    summary: 'The target accepted connections but never sent a valid HTTP/1.1 response.',
  },
  NS_ERR_TARGET_TIMEOUT: {
    kind: 'failure',
    summary: 'The target accepted connections but no response arrived within --timeout.',
  },
  NS_ERR_NO_RESPONSES: {
    kind: 'failure',
    summary: 'A run completed no request at all, for a mix of reasons (see the error counts).',
  },
  NS_ERR_OUTPUT: { kind: 'failure', summary: 'The --out directory or one of its files cannot be written.' },
  NS_ERR_LISTEN: {
    kind: 'failure',
    summary: 'A server could not listen on the requested host and port (in use, not permitted, no such address).',
  },
  NS_ERR_NOT_INSTALLED: {
    kind: 'failure',
    summary:
      'A server nodescale starts from the PATH (rabbitmq-server, redis-server) is not installed; the message names the package.',
  },
  NS_ERR_MISSING_PACKAGE: {
    kind: 'failure',
    summary:
      'An optional package that one part of nodescale needs (amqplib for the amqp transport) is not installed; the message names it.',
  },
  NS_ERR_SERVER_START: {
    kind: 'failure',
    summary: 'A server that nodescale starts as a child process exited or did not report its address in time.',
  },
  NS_ERR_WORKER: { kind: 'failure', summary: 'A load-generator worker thread failed; the message carries its error.' },
  NS_ERR_OVERLOADED: {
    kind: 'http',
    status: 503,
    summary:
      'A 503 from the runtime layer: the process sheds load to keep its event loop responsive; Retry-After says when to come back.',
  },
  NS_ERR_PAYLOAD_TOO_LARGE: {
    kind: 'http',
    status: 413,
    summary: 'A 413 from the runtime layer: the request body (Content-Length) passes maxBodyBytes.',
  },
  NS_ERR_RUNTIME_ATTACHED: {
    kind: 'failure',
    summary: 'A runtime was attached to a second server: one runtime protects one server.',
  },
  NS_ERR_SHUTDOWN_DISABLED: {
    kind: 'failure',
    summary: 'onShutdown() or shutdown() was called on a runtime made with shutdown: false.',
  },
  NS_ERR_ADMIN_INSECURE: {
    kind: 'failure',
    summary:
      'The admin console refuses an insecure setup: TCP without TLS or without authentication, or a socket directory others can reach.',
  },
  NS_ERR_DASHBOARD_INSECURE: {
    kind: 'failure',
    summary: 'The dashboard refuses to listen on an address other than loopback without a token.',
  },
  NS_ERR_DASHBOARD_AUTH: {
    kind: 'http',
    status: 401,
    summary: 'The dashboard asked for its token: none was given, or the wrong one.',
  },
  NS_ERR_DASHBOARD_READ_ONLY: {
    kind: 'http',
    status: 403,
    summary: 'An action (POST /api/action) on a dashboard started without an admin token: it has none.',
  },
  NS_ERR_DASHBOARD_ACTION: {
    kind: 'http',
    status: 400,
    summary: "A dashboard action's request is not one: not JSON, too large, an unknown app or action, a bad argument.",
  },
  NS_ERR_DASHBOARD_RATE_LIMITED: {
    kind: 'http',
    status: 429,
    summary:
      'A wrong admin token, after more than 30 failed ones in the last minute on this dashboard. The right one is still accepted.',
  },
  NS_ERR_INSPECT_OPEN: {
    kind: 'failure',
    summary:
      "The admin console's `inspect` on a process whose inspector is open already (--inspect, or another session).",
  },
  NS_ERR_STALL_OFF: {
    kind: 'failure',
    summary: "The admin console's `stalls` on a process whose stall capture is off.",
  },
  NS_ERR_ADMIN_IN_USE: { kind: 'failure', summary: 'The admin socket path is in use by a live process.' },
  NS_ERR_ADMIN_AUTH: {
    kind: 'failure',
    summary: 'The admin console refused the connection: no token, or the wrong one.',
  },
  NS_ERR_ADMIN_RATE_LIMITED: {
    kind: 'failure',
    summary:
      'Too many failed admin authentications in the last minute: a wrong token is refused with this code (the right one is still accepted).',
  },
  NS_ERR_ADMIN_UNKNOWN_COMMAND: {
    kind: 'failure',
    summary: 'The admin console has no command of that name ("help" lists them).',
  },
  NS_ERR_ADMIN_BAD_MESSAGE: {
    kind: 'failure',
    summary:
      'An admin message was not a JSON object with an integer id and a cmd, or was longer than 1 MiB (4 KiB before authenticating).',
  },
  NS_ERR_ADMIN_COMMAND_FAILED: {
    kind: 'failure',
    summary: 'An admin command failed while running; the message says why.',
  },
  NS_ERR_ADMIN_CONNECT: {
    kind: 'failure',
    summary: 'The console could not reach the target (no such socket, refused, TLS verification failed, disconnected).',
  },
  NS_ERR_APP_NOT_FOUND: { kind: 'usage', summary: 'nodescale run was given an app file that does not exist.' },
  NS_ERR_APP_CRASH_LOOP: {
    kind: 'failure',
    summary: 'The supervised app crashed too often in too short a time (or exits at once); it is not restarted again.',
  },
  NS_ERR_RELOAD_ROLLED_BACK: {
    kind: 'failure',
    summary:
      'A rolling reload stopped because a new worker failed (at start, or during its probation with --rollback parked); the old workers serve.',
  },
  NS_ERR_RELOAD_UNSTABLE: {
    kind: 'failure',
    summary:
      'With --rollback none: every slot was replaced, but a new worker exited within its probation: the new version is not stable, and the old workers are gone.',
  },
  NS_ERR_STOP_FORCED: {
    kind: 'failure',
    summary:
      'The supervisor stopped, but some workers did not drain within the grace period and were killed (their requests in flight were lost).',
  },
  NS_ERR_SUPERVISOR_UNREACHABLE: {
    kind: 'failure',
    summary: 'No supervisor answers on the control socket (is nodescale run running with that --name?).',
  },
  NS_ERR_WORKER_NO_CONSOLE: {
    kind: 'failure',
    summary:
      'The supervised worker has no admin console: no such worker, nodescale run without --console, or an app not using nodescale/runtime.',
  },
  NS_ERR_FETCH_URL: {
    kind: 'http',
    status: 400,
    summary: 'The tagger was given something that is not an http: or https: URL (or one with credentials).',
  },
  NS_ERR_FETCH_REFUSED: {
    kind: 'http',
    status: 403,
    summary:
      'The host of the URL is, or resolves to, a loopback, private, link-local or metadata address that is not allow-listed.',
  },
  NS_ERR_FETCH_TIMEOUT: {
    kind: 'http',
    status: 504,
    summary: 'The page did not arrive in full within the fetch deadline (redirects included).',
  },
  NS_ERR_FETCH_TOO_LARGE: {
    kind: 'http',
    status: 422,
    summary: 'The page is larger than the fetch size limit (2 MiB by default).',
  },
  NS_ERR_FETCH_NOT_HTML: { kind: 'http', status: 422, summary: 'The content type of the page is not HTML.' },
  NS_ERR_FETCH_REDIRECTS: {
    kind: 'http',
    status: 502,
    summary: 'The page redirected more times than allowed (a loop, most often).',
  },
  NS_ERR_FETCH_FAILED: {
    kind: 'http',
    status: 502,
    summary: 'The page could not be fetched: no such host, refused, reset, or a non-2xx status.',
  },
  NS_ERR_GRAPHQL_BAD_REQUEST: {
    kind: 'http',
    status: 400,
    summary:
      'The HTTP request is not a GraphQL request: a body that is not JSON, no query, variables that are not an object.',
  },
  NS_ERR_GRAPHQL_METHOD: {
    kind: 'http',
    status: 405,
    summary: 'The GraphQL endpoint answers GET and POST only (the Allow header says so).',
  },
  NS_ERR_GRAPHQL_MEDIA_TYPE: {
    kind: 'http',
    status: 415,
    summary: 'A POST to the GraphQL endpoint whose content type is neither application/json nor application/graphql.',
  },
  NS_ERR_GRAPHQL_BODY_TOO_LARGE: {
    kind: 'http',
    status: 413,
    summary: 'The body of a GraphQL request passes its limit (64 KiB).',
  },
  NS_ERR_GRAPHQL_INVALID: {
    kind: 'http',
    status: 400,
    summary: 'The GraphQL query does not parse, or does not validate against the schema.',
  },
  NS_ERR_GRAPHQL_TOO_COMPLEX: {
    kind: 'http',
    status: 400,
    summary:
      'The GraphQL query is too long, too deep, asks for too many fields, or may answer too many list items (the pages of its urls fields).',
  },
  NS_ERR_INVALID_PAGE: {
    kind: 'http',
    status: 400,
    summary: 'A page of urls(tag) out of range: `first` is an integer from 1 to 500.',
  },
  NS_ERR_COMPUTE_TIMEOUT: {
    kind: 'http',
    status: 504,
    retryable: true,
    summary: 'A compute task did not finish before its deadline; it was cancelled.',
  },
  NS_ERR_COMPUTE_QUEUE_FULL: {
    kind: 'http',
    status: 503,
    retryable: true,
    summary: 'The queue of the compute pool is full: the task was refused at once rather than queued without bound.',
  },
  NS_ERR_COMPUTE_FAILED: {
    kind: 'http',
    status: 500,
    summary: 'A compute task threw, or its worker crashed; the worker is replaced and the pool keeps serving.',
  },
  NS_ERR_COMPUTE_UNAVAILABLE: {
    kind: 'http',
    status: 503,
    retryable: true,
    summary:
      'The broker of the compute service cannot be reached (down, restarting, refused): the call was refused at once, or lost with the connection. Retryable.',
  },
  NS_ERR_COMPUTE_POISON: {
    kind: 'http',
    status: 500,
    summary:
      'The task was dead-lettered: it was delivered the maximum number of times (it kills or stalls the services that run it) and is parked, not retried.',
  },
  NS_ERR_BROKER_AUTH: {
    kind: 'failure',
    summary: 'The broker refused the credentials of the URL (its user and password).',
  },
  NS_ERR_BROKER_VHOST: {
    kind: 'usage',
    summary:
      'The broker refused the virtual host named in the URL (its path: amqp://host/VHOST): it has none of that name, or the user may not use it.',
  },
  NS_ERR_STORE_UNAVAILABLE: {
    kind: 'http',
    status: 503,
    retryable: true,
    summary:
      "The tagger's shared store (Redis) cannot be reached or did not answer in time: the index cannot be read. Retryable.",
  },
  NS_ERR_STORE_AUTH: {
    kind: 'failure',
    summary: 'Redis refused the credentials of the --store URL (user or password).',
  },
  NS_ERR_STORE_TLS: {
    kind: 'failure',
    summary:
      "The TLS handshake with Redis failed on a certificate: the server's is not signed by a CA given, or it refused this client's (or asks for one).",
  },
  NS_ERR_COMPUTE_CLOSED: {
    kind: 'http',
    status: 503,
    summary: 'A compute task was submitted after its compute (pool, inline or amqp) was closed.',
  },
  NS_ERR_NOT_FOUND: { kind: 'http', status: 404, summary: 'A 404: no route at that path.' },
  NS_ERR_DEPLOY_KEEPALIVE_RACE: {
    kind: 'usage',
    summary:
      "A balancer configuration whose idle time for upstream connections is not shorter than Node's keepAliveTimeout: it would reuse connections Node has closed (502s on POSTs).",
  },
  NS_ERR_DEPLOY_TLS: {
    kind: 'usage',
    summary:
      "A --tls-cert or --tls-key of nodescale deploy is missing, is not PEM, or the key is not the certificate's.",
  },
  NS_ERR_DEPLOY_SWEEP: {
    kind: 'usage',
    summary:
      'The --from-sweep file cannot be read, or holds no knee (a results.json of nodescale sweep that found one).',
  },
  NS_ERR_DEPLOY_UNSUPPORTED: {
    kind: 'usage',
    summary: 'The balancer asked for cannot do what was asked (haproxy serves no static files).',
  },
  NS_ERR_DOCTOR_PROXY: {
    kind: 'usage',
    summary:
      'The balancer configuration given to nodescale doctor --proxy cannot be read, or holds a time its server would not read.',
  },
  NS_ERR_CONFIG: {
    kind: 'usage',
    summary:
      'The config file (nodescale.config.json, .js, .mjs or .ts) cannot be read, has a key nodescale does not know, or a value of the wrong kind.',
  },
  NS_ERR_APP_RUNNING: {
    kind: 'failure',
    summary: 'nodescale start was asked for an app that already runs under that name.',
  },
  NS_ERR_START_FAILED: {
    kind: 'failure',
    summary: "nodescale start's supervisor exited, or its workers were not ready in time.",
  },
  NS_ERR_APP_UNKNOWN: {
    kind: 'failure',
    summary: 'No app of that name was started with nodescale start (nor runs under nodescale run).',
  },
  NS_ERR_STARTUP: {
    kind: 'failure',
    summary:
      'nodescale startup wrote the units but systemctl could not enable them (systemd is not running here, or refused).',
  },
  NS_ERR_INTERNAL: {
    kind: 'failure',
    summary: 'A bug in nodescale. Run again with --debug and report the stack trace.',
  },
} as const satisfies Record<string, { kind: ErrorKind; status?: number; retryable?: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface NodescaleErrorOptions {
  cause?: unknown;
  /** True when the same call may succeed if tried again unchanged. Default: what the code declares (else false). */
  retryable?: boolean;
}

/**
 * The brand of our errors, in the global symbol registry (as undici brands its own): an error made by another copy
 * of this module (src/ and dist/ both loaded, two installs of nodescale) is still a NodescaleError to `instanceof`.
 */
const BRAND = Symbol.for('nodescale.error');

export class NodescaleError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: NodescaleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NodescaleError';
    this.code = code;
    this.retryable = options.retryable ?? (ERROR_CODES[code] as { retryable?: boolean }).retryable ?? false;
    // Not enumerable: a copy of an error's fields ({ ...error }) is not an error.
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code].kind;
  }

  /** The HTTP status a server answers this error with: the one declared with its code, else 500. */
  get status(): number {
    return httpStatus(this.code);
  }
}

/** The HTTP status declared with a code (500 when it has none: an error of ours a client cannot fix). */
export function httpStatus(code: ErrorCode): number {
  const entry: { kind: ErrorKind; status?: number } = ERROR_CODES[code];
  return entry.status ?? 500;
}

export function isNodescaleError(value: unknown): value is NodescaleError {
  return value instanceof NodescaleError;
}

/** Shorthand for the most common error: an option with a bad value. */
export function invalidOption(name: string, expected: string, got: unknown): NodescaleError {
  return new NodescaleError('NS_ERR_INVALID_OPTION', `${name} must be ${expected}, got ${JSON.stringify(got)}`);
}
