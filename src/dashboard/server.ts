/**
 * The dashboard's HTTP server: one self-contained page (its script, uPlot and its stylesheet served from the package:
 * nothing is fetched from elsewhere), a snapshot (`/api/snapshot`) and a live stream of points and events over
 * Server-Sent Events (`/api/stream`), for one or several apps (collectors).
 *
 * Read-only, and closed by default:
 * - bound to loopback unless told otherwise; any other address needs a token (refused at start without one,
 *   NS_ERR_DASHBOARD_INSECURE). With a token every request needs it: `Authorization: Bearer …`, or the cookie the page
 *   sets when opened once as `/?token=…` (then redirected to `/`, so the token leaves the address bar and history).
 *   Compared in constant time.
 * - On loopback, the Host header must name loopback: a web page elsewhere cannot read the dashboard through a name it
 *   points at 127.0.0.1 (DNS rebinding).
 * - A strict Content-Security-Policy (scripts, styles and connections to this origin only), no framing, no caching;
 *   at most 16 streams at once, and the server's request and header timeouts.
 *
 * Actions only with an admin token (`admin`): then the page offers reload, scale and a heap snapshot (actions.ts), and
 * each `POST /api/action` needs that token too, in `X-Nodescale-Admin-Token` (a header another site's page cannot
 * send without a CORS preflight this server never grants). The body is size-limited before any token is checked;
 * every attempt, allowed or not, is audited; past 30 failed tokens in a minute a wrong one is refused with
 * NS_ERR_DASHBOARD_RATE_LIMITED (the right one still works). Without an admin token there is no action at all.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { NodescaleError } from '../errors.ts';
import type { SupervisorEvent } from '../ipc.ts';
import { readAtMost } from '../read-body.ts';
import { ACTION_NAMES, type AppActions } from './actions.ts';
import type { AppPoint, Collector, WorkerRow } from './collector.ts';

export interface DashboardOptions {
  host: string;
  port: number;
  /** Required on any address but loopback. */
  token?: string | null;
  apps: Collector[];
  /** The buttons: with the admin token, each app's actions (by its name), and where each attempt is recorded. */
  admin?: {
    token: string;
    actions: ReadonlyMap<string, AppActions>;
    audit(entry: Record<string, unknown>): void;
  } | null;
}

export interface Dashboard {
  /** The page's address (without the token). */
  readonly url: string;
  close(): Promise<void>;
}

export const DASHBOARD_LIMITS = {
  streams: 16,
  connections: 64,
  tokenMinLength: 16,
  actionBodyBytes: 1024,
  /** Failed admin tokens in a minute before a wrong one is refused with NS_ERR_DASHBOARD_RATE_LIMITED. */
  adminFailuresPerMinute: 30,
} as const;

const COOKIE = 'nodescale_dashboard';
const require = createRequire(import.meta.url);
/** Each file read once, on first use. */
const asset = (file: string) => {
  let body = cache.get(file);
  if (body === undefined) cache.set(file, (body = readFileSync(file)));
  return body;
};
const cache = new Map<string, Buffer>();
const ASSETS: Record<string, { type: string; body: () => Buffer }> = {
  '/assets/uPlot.iife.min.js': {
    type: 'text/javascript; charset=utf-8',
    body: () => asset(require.resolve('uplot/dist/uPlot.iife.min.js')),
  },
  '/assets/uPlot.min.css': {
    type: 'text/css; charset=utf-8',
    body: () => asset(require.resolve('uplot/dist/uPlot.min.css')),
  },
  '/assets/dashboard.js': {
    type: 'text/javascript; charset=utf-8',
    body: () => asset(new URL('./assets/dashboard.js', import.meta.url).pathname),
  },
  '/assets/dashboard.css': {
    type: 'text/css; charset=utf-8',
    body: () => asset(new URL('./assets/dashboard.css', import.meta.url).pathname),
  },
  '/': {
    type: 'text/html; charset=utf-8',
    body: () => asset(new URL('./assets/index.html', import.meta.url).pathname),
  },
};

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export const isLoopbackHost = (host: string) =>
  host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

const digest = (text: string) => createHash('sha256').update(text).digest();

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const token = options.token ?? null;
  const loopback = isLoopbackHost(options.host);
  if (!loopback && token === null)
    throw new NodescaleError(
      'NS_ERR_DASHBOARD_INSECURE',
      `the dashboard would be open to anyone who reaches ${options.host}: give --dashboard-token-file FILE, or bind it to 127.0.0.1 and forward the port`,
    );
  if (token !== null && token.length < DASHBOARD_LIMITS.tokenMinLength)
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `the dashboard's token must be at least ${DASHBOARD_LIMITS.tokenMinLength} characters (openssl rand -hex 32 > token)`,
    );
  const expected = token === null ? null : digest(token);
  const matches = (given: string | undefined) =>
    expected === null || (given !== undefined && timingSafeEqual(digest(given), expected));
  const admin = options.admin ?? null;
  if (admin !== null && admin.token.length < DASHBOARD_LIMITS.tokenMinLength)
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `the dashboard's admin token must be at least ${DASHBOARD_LIMITS.tokenMinLength} characters (openssl rand -hex 32 > admin-token)`,
    );
  if (admin !== null && admin.token === token)
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      "the dashboard's admin token must differ from its token: whoever may look need not be able to act",
    );
  const snapshot = () => ({ apps: options.apps.map((app) => app.snapshot()), actions: admin !== null });
  const act = admin === null ? null : actionHandler(admin);

  const streams = new Set<ServerResponse>();
  const send = (kind: string, data: unknown) => {
    const frame = `event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of streams) stream.write(frame);
  };
  const listeners = options.apps.map((app) => {
    const onPoint = (point: AppPoint, workers: WorkerRow[]) => send('point', { app: app.name, point, workers });
    const onEvent = (event: SupervisorEvent) => send('mark', { app: app.name, event });
    app.on('point', onPoint);
    app.on('event', onEvent);
    return () => {
      app.off('point', onPoint);
      app.off('event', onEvent);
    };
  });
  const keepAlive = setInterval(() => {
    for (const stream of streams) stream.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();

  const refuse = (res: ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, { ...HEADERS, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code, message } }));
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (loopback && !isLoopbackHost((req.headers.host ?? '').replace(/:\d+$/, '')))
      return refuse(res, 403, 'NS_ERR_DASHBOARD_AUTH', 'this dashboard answers to a loopback address only');
    const isAction = url.pathname === '/api/action' && req.method === 'POST';
    if (req.method !== 'GET' && req.method !== 'HEAD' && !isAction)
      return refuse(res, 404, 'NS_ERR_NOT_FOUND', 'GET only (and POST /api/action)');
    const fromUrl = url.searchParams.get('token');
    if (url.pathname === '/' && fromUrl !== null && token !== null) {
      if (!matches(fromUrl)) return refuse(res, 401, 'NS_ERR_DASHBOARD_AUTH', 'wrong token');
      res.writeHead(303, {
        ...HEADERS,
        location: '/',
        'set-cookie': `${COOKIE}=${encodeURIComponent(fromUrl)}; HttpOnly; SameSite=Strict; Path=/`,
      });
      return res.end();
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const cookie = (req.headers.cookie ?? '')
      .split(/; */)
      .find((entry) => entry.startsWith(`${COOKIE}=`))
      ?.slice(COOKIE.length + 1);
    if (!matches(bearer ?? (cookie === undefined ? undefined : safeDecode(cookie))))
      return refuse(
        res,
        401,
        'NS_ERR_DASHBOARD_AUTH',
        'this dashboard needs its token: open it once as /?token=…, or send Authorization: Bearer …',
      );

    if (isAction) {
      if (act === null)
        return refuse(
          res,
          403,
          'NS_ERR_DASHBOARD_READ_ONLY',
          'this dashboard is read-only: start it with an admin token file for its actions',
        );
      return void act(req, res, refuse);
    }
    if (url.pathname === '/api/snapshot') {
      res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' });
      return res.end(JSON.stringify(snapshot()));
    }
    if (url.pathname === '/api/stream') {
      if (streams.size >= DASHBOARD_LIMITS.streams)
        return refuse(res, 503, 'NS_ERR_OVERLOADED', `at most ${DASHBOARD_LIMITS.streams} pages at once`);
      res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(snapshot())}\n\n`);
      streams.add(res);
      req.socket.setTimeout(0);
      res.on('close', () => streams.delete(res));
      return;
    }
    const file = ASSETS[url.pathname];
    if (file === undefined) return refuse(res, 404, 'NS_ERR_NOT_FOUND', 'no such page');
    res.writeHead(200, { ...HEADERS, 'content-type': file.type });
    res.end(req.method === 'HEAD' ? undefined : file.body());
  };

  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, handle);
  server.maxConnections = DASHBOARD_LIMITS.connections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new NodescaleError(
          'NS_ERR_INVALID_OPTION',
          `the dashboard cannot listen on ${options.host}:${options.port}: ${error.code ?? error.message}`,
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/`,
    close: async () => {
      clearInterval(keepAlive);
      for (const unlisten of listeners) unlisten();
      for (const stream of streams) stream.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Refuse = (res: ServerResponse, status: number, code: string, message: string) => void;

/** POST /api/action: { app, action, workers? (scale), worker? (heap-snapshot) }, with the admin token. */
function actionHandler(admin: NonNullable<DashboardOptions['admin']>) {
  const expected = digest(admin.token);
  const failures: number[] = [];
  const names = new Set(admin.actions.keys());
  return async (req: IncomingMessage, res: ServerResponse, refuse: Refuse) => {
    const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const started = performance.now();
    const audit = (entry: Record<string, unknown>) => admin.audit({ peer, ...entry });
    // Limits first, before the token: a body too large or not JSON is refused unread.
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
      return refuse(res, 415, 'NS_ERR_DASHBOARD_ACTION', 'an action is a JSON body (content-type: application/json)');
    const body = await readAtMost(req, DASHBOARD_LIMITS.actionBodyBytes).catch(() => null);
    if (body === null) {
      res.setHeader('connection', 'close');
      return refuse(
        res,
        413,
        'NS_ERR_DASHBOARD_ACTION',
        `an action's body is at most ${DASHBOARD_LIMITS.actionBodyBytes} bytes`,
      );
    }
    const given = req.headers['x-nodescale-admin-token'];
    const now = Date.now();
    while (failures.length > 0 && failures[0]! < now - 60_000) failures.shift();
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      const limited = failures.length >= DASHBOARD_LIMITS.adminFailuresPerMinute;
      if (!limited) failures.push(now);
      audit({ action: 'auth', ok: false, error: limited ? 'NS_ERR_DASHBOARD_RATE_LIMITED' : 'NS_ERR_DASHBOARD_AUTH' });
      return limited
        ? refuse(res, 429, 'NS_ERR_DASHBOARD_RATE_LIMITED', 'too many wrong admin tokens in the last minute')
        : refuse(res, 401, 'NS_ERR_DASHBOARD_AUTH', 'actions need the admin token (X-Nodescale-Admin-Token)');
    }
    const request = parseAction(body, names);
    if ('error' in request) {
      audit({ action: 'invalid', ok: false, error: request.error });
      return refuse(res, 400, 'NS_ERR_DASHBOARD_ACTION', request.error);
    }
    const { app, action, value } = request;
    const actions = admin.actions.get(app)!;
    const args = action === 'scale' ? { workers: value } : action === 'heap-snapshot' ? { worker: value } : {};
    try {
      const result =
        action === 'reload'
          ? await actions.reload()
          : action === 'scale'
            ? await actions.scale(value!)
            : await actions.heapSnapshot(value!);
      audit({ app, action, args, ok: true, ms: Math.round(performance.now() - started) });
      res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, result }));
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'NS_ERR_INTERNAL';
      audit({ app, action, args, ok: false, error: code, ms: Math.round(performance.now() - started) });
      refuse(res, code === 'NS_ERR_INVALID_OPTION' ? 400 : 500, code, (error as Error).message);
    }
  };
}

/** An action's body, checked: a known app, a known action, and its one whole-number argument where it takes one. */
function parseAction(
  body: Buffer,
  apps: ReadonlySet<string>,
): { app: string; action: (typeof ACTION_NAMES)[number]; value: number | null } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'the body is not JSON' };
  }
  const { app, action, workers, worker } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof app !== 'string' || !apps.has(app)) return { error: `app must be one of: ${[...apps].join(', ')}` };
  if (!ACTION_NAMES.includes(action as never)) return { error: `action must be one of: ${ACTION_NAMES.join(', ')}` };
  const name = action as (typeof ACTION_NAMES)[number];
  if (name === 'reload') return { app, action: name, value: null };
  const value = name === 'scale' ? workers : worker;
  const field = name === 'scale' ? 'workers' : 'worker';
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (name === 'scale' ? 1 : 0) || value > 1024)
    return { error: `${field} must be a whole number from ${name === 'scale' ? 1 : 0} to 1024` };
  return { app, action: name, value };
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
