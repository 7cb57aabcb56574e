/**
 * The balancer in front of the Node instances, as data: the product of `nodescale deploy nginx|haproxy`, which the
 * renderers (nginx.ts, haproxy.ts) only put into each server's words. Built from the options, checked as a whole
 * (the keep-alive race, certificates, limits), then rendered: a configuration that does not hold is refused before a
 * line is written.
 *
 * The keep-alive race: Node closes an idle keep-alive connection after its `keepAliveTimeout` (5 s by default, plus
 * a 1 s buffer on Node 24), and a balancer that keeps an idle upstream connection longer reuses one Node has closed:
 * a 502 on a request it will not retry (POST). So the balancer's idle time for upstream connections is always
 * shorter than Node's: half of it, or a second less, whichever is longer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { invalidOption, NodescaleError } from '../errors.ts';

export interface Upstream {
  host: string;
  port: number;
}

export interface TlsName {
  /** The name clients ask for (SNI), and the certificate and key that answer it (PEM files). */
  serverName: string;
  cert: string;
  key: string;
}

export interface StaticRoute {
  /** The URL prefix (/assets). */
  prefix: string;
  /** The directory it serves. */
  dir: string;
}

export interface BalancerOptions {
  upstreams: readonly string[];
  /** The port clients connect to. Default 80, or 443 with TLS. */
  listen?: number;
  /** The address it listens on. Default every address (0.0.0.0). */
  listenHost?: string;
  tls?: readonly TlsName[];
  /** Strict-Transport-Security on TLS responses. Default off. */
  hsts?: boolean;
  gzip?: boolean;
  static?: readonly StaticRoute[];
  /** The Node side's keepAliveTimeout, ms. Default 5000 (Node's own). */
  keepAliveTimeoutMs?: number;
  /** The balancer's idle time for upstream connections, ms. Default: half of keepAliveTimeoutMs, or 1 s less. */
  upstreamIdleMs?: number;
  /** The longest a request may take upstream before the balancer gives up, ms. Default 30 000. */
  readTimeoutMs?: number;
  /** The largest request body, bytes. Default 1 MiB, the runtime's maxBodyBytes. */
  maxBodyBytes?: number;
  /** Connections at most to each upstream (haproxy maxconn, nginx max_conns); null: no limit. */
  maxConnsPerUpstream?: number | null;
  /** Where the balancer writes its access log, or 'off'. */
  accessLog?: string;
}

export interface BalancerModel {
  upstreams: Upstream[];
  listen: { host: string; port: number };
  tls: TlsName[];
  hsts: boolean;
  gzip: boolean;
  static: StaticRoute[];
  timeouts: {
    /** Node's keepAliveTimeout: what the balancer's upstream idle must stay under. */
    nodeKeepAliveMs: number;
    upstreamIdleMs: number;
    connectMs: number;
    readMs: number;
    /** How long a client's idle keep-alive connection is kept (the client side of the chain). */
    clientIdleMs: number;
  };
  maxBodyBytes: number;
  maxConnsPerUpstream: number | null;
  /** Idle connections kept to each upstream. */
  keepaliveConnections: number;
  accessLog: string;
  /** Passive health: failures before an upstream is left out, and for how long. */
  health: { maxFails: number; failTimeoutMs: number; checkPath: string; intervalMs: number };
}

export const DEPLOY_DEFAULTS = Object.freeze({
  /** Node's http.Server default. */
  keepAliveTimeoutMs: 5000,
  readTimeoutMs: 30_000,
  connectMs: 2000,
  /** Longer than a cloud balancer's in front (AWS ALB: 60 s), which must give up on an idle connection first. */
  clientIdleMs: 75_000,
  maxBodyBytes: 1024 * 1024,
  keepaliveConnections: 32,
  accessLog: 'off',
  health: { maxFails: 3, failTimeoutMs: 10_000, checkPath: '/readyz', intervalMs: 2000 },
});

/** `host:port` (IPv6 in brackets), checked. */
export function parseUpstream(text: string): Upstream {
  const match = /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !(port >= 1 && port <= 65_535))
    throw invalidOption('--upstream', 'HOST:PORT (127.0.0.1:3001, [::1]:3001, api-1.internal:3000)', text);
  return { host: match[1]!, port };
}

/** The balancer's default idle time for upstream connections: under Node's keep-alive by a margin that always holds. */
export function defaultUpstreamIdle(keepAliveMs: number): number {
  return Math.max(Math.floor(keepAliveMs / 2), keepAliveMs - 1000);
}

function checkTls(name: TlsName): TlsName {
  for (const file of [name.cert, name.key])
    if (!existsSync(file)) throw new NodescaleError('NS_ERR_DEPLOY_TLS', `${name.serverName}: no file ${file}`);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(readFileSync(name.cert));
  } catch {
    throw new NodescaleError('NS_ERR_DEPLOY_TLS', `${name.serverName}: ${name.cert} is not a PEM certificate`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(readFileSync(name.key)));
  } catch {
    throw new NodescaleError('NS_ERR_DEPLOY_TLS', `${name.serverName}: ${name.key} is not a PEM private key`);
  }
  if (!matches)
    throw new NodescaleError('NS_ERR_DEPLOY_TLS', `${name.serverName}: ${name.key} is not the key of ${name.cert}`);
  return name;
}

export function buildModel(options: BalancerOptions): BalancerModel {
  if (options.upstreams.length === 0) throw invalidOption('--upstream', 'at least one HOST:PORT', undefined);
  const upstreams = options.upstreams.map(parseUpstream);
  const tls = (options.tls ?? []).map(checkTls);
  const keepAlive = options.keepAliveTimeoutMs ?? DEPLOY_DEFAULTS.keepAliveTimeoutMs;
  if (!(Number.isInteger(keepAlive) && keepAlive >= 2))
    throw invalidOption('--keep-alive-timeout', 'at least 2 ms', keepAlive);
  const upstreamIdle = options.upstreamIdleMs ?? defaultUpstreamIdle(keepAlive);
  // The race, refused: an upstream connection kept idle as long as Node keeps it, or longer, meets Node's close.
  if (!(upstreamIdle < keepAlive))
    throw new NodescaleError(
      'NS_ERR_DEPLOY_KEEPALIVE_RACE',
      `the balancer would keep idle upstream connections ${upstreamIdle} ms, and Node closes them after ${keepAlive} ms ` +
        '(its keepAliveTimeout): a request sent on one Node has closed fails with a 502. Keep --upstream-idle-timeout ' +
        'under --keep-alive-timeout',
    );
  const readMs = options.readTimeoutMs ?? DEPLOY_DEFAULTS.readTimeoutMs;
  const maxConns = options.maxConnsPerUpstream ?? null;
  if (maxConns !== null && !(Number.isInteger(maxConns) && maxConns >= 1))
    throw invalidOption('maxConnsPerUpstream', 'a whole number ≥ 1', maxConns);
  for (const route of options.static ?? [])
    if (!route.prefix.startsWith('/') || !existsSync(route.dir))
      throw invalidOption(
        '--static',
        'PREFIX=DIR, the prefix starting with / and the directory existing',
        `${route.prefix}=${route.dir}`,
      );
  return {
    upstreams,
    listen: { host: options.listenHost ?? '0.0.0.0', port: options.listen ?? (tls.length > 0 ? 443 : 80) },
    tls,
    hsts: options.hsts ?? false,
    gzip: options.gzip ?? false,
    static: [...(options.static ?? [])],
    timeouts: {
      nodeKeepAliveMs: keepAlive,
      upstreamIdleMs: upstreamIdle,
      connectMs: DEPLOY_DEFAULTS.connectMs,
      readMs,
      clientIdleMs: DEPLOY_DEFAULTS.clientIdleMs,
    },
    maxBodyBytes: options.maxBodyBytes ?? DEPLOY_DEFAULTS.maxBodyBytes,
    maxConnsPerUpstream: maxConns,
    keepaliveConnections:
      maxConns === null
        ? DEPLOY_DEFAULTS.keepaliveConnections
        : Math.min(maxConns, DEPLOY_DEFAULTS.keepaliveConnections),
    accessLog: options.accessLog ?? DEPLOY_DEFAULTS.accessLog,
    health: { ...DEPLOY_DEFAULTS.health },
  };
}

/** Milliseconds in the servers' own unit syntax: whole seconds as `Ns`, the rest as `Nms`. */
export function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The knee a sweep found (sweep's results.json) times the workers per upstream: the per-upstream connection limit. */
export function connectionsFromSweep(file: string, workersPerUpstream: number): number {
  let result: unknown;
  try {
    result = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new NodescaleError('NS_ERR_DEPLOY_SWEEP', `--from-sweep ${file}: ${(error as Error).message}`);
  }
  const knee = (result as { knee?: { power?: { concurrency?: unknown } | null } } | null)?.knee?.power?.concurrency;
  if (typeof knee !== 'number' || !(knee >= 1))
    throw new NodescaleError(
      'NS_ERR_DEPLOY_SWEEP',
      `--from-sweep ${file}: no knee in it (a results.json of nodescale sweep whose levels found one)`,
    );
  return Math.max(1, Math.round(knee)) * workersPerUpstream;
}
