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
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { NodescaleError } from '../errors.ts';
import type { SupervisorEvent } from '../ipc.ts';
import type { AppPoint, Collector, WorkerRow } from './collector.ts';

export interface DashboardOptions {
  host: string;
  port: number;
  /** Required on any address but loopback. */
  token?: string | null;
  apps: Collector[];
}

export interface Dashboard {
  /** The page's address (without the token). */
  readonly url: string;
  close(): Promise<void>;
}

export const DASHBOARD_LIMITS = { streams: 16, connections: 64, tokenMinLength: 16 } as const;

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
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return refuse(res, 404, 'NS_ERR_NOT_FOUND', 'the dashboard is read-only: GET only');
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

    if (url.pathname === '/api/snapshot') {
      res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' });
      return res.end(JSON.stringify({ apps: options.apps.map((app) => app.snapshot()) }));
    }
    if (url.pathname === '/api/stream') {
      if (streams.size >= DASHBOARD_LIMITS.streams)
        return refuse(res, 503, 'NS_ERR_OVERLOADED', `at most ${DASHBOARD_LIMITS.streams} pages at once`);
      res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      res.write(
        `retry: 2000\nevent: snapshot\ndata: ${JSON.stringify({ apps: options.apps.map((app) => app.snapshot()) })}\n\n`,
      );
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

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
