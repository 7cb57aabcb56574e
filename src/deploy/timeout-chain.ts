/**
 * The timeout chain, checked hop by hop (`nodescale doctor --proxy FILE`): on each hop that keeps idle connections to
 * reuse them, the side that reuses must give up on an idle connection before the side that closes it does, or it
 * sends a request on a connection already closed (the keep-alive race, a 502 or a reset). The balancer's timeouts
 * are read from its configuration file (nginx or haproxy), with each server's own defaults where a value is not set.
 */
import { NodescaleError } from '../errors.ts';
import type { HttpServerTimeouts } from '../ipc.ts';
import type { Finding } from './doctor.ts';
import { defaultUpstreamIdle, duration } from './model.ts';

export interface ChainOptions {
  /** The balancer's configuration, and which server reads it. */
  text: string;
  kind: 'nginx' | 'haproxy';
  /** Node's keepAliveTimeout and requestTimeout, ms (Node's defaults: 5 000 and 300 000). */
  nodeKeepAliveMs: number;
  nodeRequestTimeoutMs: number;
  /** An idle timeout in front of the balancer (a cloud balancer's: AWS ALB 60 s), with its name. */
  front?: { name: string; idleMs: number };
}

/** nginx's time syntax: 500ms, 5s, 1m, 1h, or a bare number of seconds. */
function nginxTime(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (match === null) throw new NodescaleError('NS_ERR_DOCTOR_PROXY', `a time nginx would not read: ${text}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's']!;
}

/** haproxy's time syntax: a bare number is milliseconds. */
function haproxyTime(text: string): number {
  const match = /^(\d+)(us|ms|s|m|h|d)?$/.exec(text);
  if (match === null) throw new NodescaleError('NS_ERR_DOCTOR_PROXY', `a time haproxy would not read: ${text}`);
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms']!;
}

const withoutComments = (text: string) => text.replace(/#[^\n]*/g, '');

interface ProxyTimeouts {
  /** How long it keeps an idle client connection. */
  clientIdleMs: number;
  /** How long it keeps an idle upstream connection to reuse, or null when it does not reuse them (nginx). */
  upstreamIdleMs: number | null;
  /** haproxy's http-reuse mode (its default: safe). */
  reuse: 'never' | 'safe' | 'aggressive' | 'always' | null;
  /** How long it waits for an upstream's answer. */
  readMs: number;
}

export function proxyTimeouts(kind: 'nginx' | 'haproxy', raw: string): ProxyTimeouts {
  const text = withoutComments(raw);
  if (kind === 'nginx') {
    const upstreams = [...text.matchAll(/\bupstream\s+\S+\s*\{([^}]*)\}/g)].map((m) => m[1]!);
    const reusing = upstreams.filter((body) => /\bkeepalive\s+\d+\s*;/.test(body));
    const idle = reusing.map((body) => /\bkeepalive_timeout\s+(\S+?)\s*;/.exec(body)?.[1] ?? '60s').map(nginxTime);
    const outside = text.replace(/\bupstream\s+\S+\s*\{[^}]*\}/g, '');
    return {
      clientIdleMs: nginxTime(/\bkeepalive_timeout\s+(\S+?)\s*;/.exec(outside)?.[1] ?? '75s'),
      upstreamIdleMs: idle.length === 0 ? null : Math.max(...idle),
      reuse: null,
      readMs: nginxTime(/\bproxy_read_timeout\s+(\S+?)\s*;/.exec(text)?.[1] ?? '60s'),
    };
  }
  const timeouts = new Map<string, number>();
  for (const [, name, value] of text.matchAll(/\btimeout\s+(\S+)\s+(\S+)/g))
    if (!timeouts.has(name!)) timeouts.set(name!, haproxyTime(value!));
  const modes = [...text.matchAll(/\bhttp-reuse\s+(\S+)/g)].map((m) => m[1]!);
  for (const mode of modes)
    if (!['never', 'safe', 'aggressive', 'always'].includes(mode))
      throw new NodescaleError('NS_ERR_DOCTOR_PROXY', `an http-reuse mode haproxy would not read: ${mode}`);
  // The riskiest mode written anywhere (a defaults section, a backend) is the one that can race.
  const order = ['never', 'safe', 'aggressive', 'always'] as const;
  const reuse = modes.length === 0 ? 'safe' : order[Math.max(...modes.map((m) => order.indexOf(m as never)))]!;
  return {
    clientIdleMs: timeouts.get('http-keep-alive') ?? timeouts.get('client') ?? 0,
    // haproxy has no idle timeout for server connections: pool-purge-delay closes half of the idle ones each period,
    // so one can idle for many periods. What keeps it off the race is http-reuse safe (below).
    upstreamIdleMs: null,
    reuse,
    readMs: timeouts.get('server') ?? 0,
  };
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

export function checkTimeoutChain(options: ChainOptions): Finding[] {
  const proxy = proxyTimeouts(options.kind, options.text);
  const findings: Finding[] = [];
  if (options.front !== undefined) {
    const ok = options.front.idleMs < proxy.clientIdleMs;
    findings.push({
      check: `idle: ${options.front.name} → ${options.kind}`,
      severity: ok ? 'ok' : 'fail',
      found: `${options.front.name} keeps idle connections ${seconds(options.front.idleMs)}, ${options.kind} ${seconds(proxy.clientIdleMs)}`,
      why: `${options.front.name} reuses its idle connections to ${options.kind}: if ${options.kind} closes them first, a request is sent on a closed one (a 502 from ${options.front.name})`,
      fix: ok
        ? null
        : options.kind === 'nginx'
          ? `keepalive_timeout ${Math.ceil(options.front.idleMs / 1000) + 15}s; in nginx's http block`
          : `timeout http-keep-alive ${Math.ceil(options.front.idleMs / 1000) + 15}s in haproxy's defaults`,
    });
  }
  if (options.nodeKeepAliveMs === 0) {
    findings.push({
      check: `idle: ${options.kind} → Node`,
      severity: 'ok',
      found: 'Node keeps no idle connections (keepAliveTimeout 0): each answer closes its connection',
      why: 'nothing idle is reused, so nothing races (each request pays a new connection)',
      fix: null,
    });
  } else if (proxy.upstreamIdleMs !== null) {
    const ok = proxy.upstreamIdleMs < options.nodeKeepAliveMs;
    findings.push({
      check: `idle: ${options.kind} → Node`,
      severity: ok ? 'ok' : 'fail',
      found: `${options.kind} keeps idle upstream connections ${seconds(proxy.upstreamIdleMs)}, Node ${seconds(options.nodeKeepAliveMs)} (its keepAliveTimeout)`,
      why: `${options.kind} reuses idle connections to Node: if Node closes them first, a request is sent on a closed one (sporadic 502s, on POSTs, which are not retried)`,
      fix: ok
        ? null
        : `keepalive_timeout ${duration(defaultUpstreamIdle(options.nodeKeepAliveMs))}; in the upstream block (nodescale deploy nginx writes it)`,
    });
  }
  if (options.nodeKeepAliveMs !== 0 && proxy.reuse !== null && proxy.reuse !== 'never') {
    const ok = proxy.reuse === 'safe';
    findings.push({
      check: `idle: ${options.kind} → Node`,
      severity: ok ? 'ok' : 'fail',
      found: `http-reuse ${proxy.reuse}${ok ? " (haproxy's default)" : ''}; Node closes idle connections after ${seconds(options.nodeKeepAliveMs)} (its keepAliveTimeout)`,
      why: ok
        ? "a client's first request gets a server connection of its own, never an idle one Node may have closed"
        : `${proxy.reuse} sends a client's first request on an idle server connection, which Node may have closed (sporadic 502s, on POSTs, which are not retried); pool-purge-delay is no idle timeout: it closes half of the idle ones each period`,
      fix: ok ? null : 'http-reuse safe in the defaults section (nodescale deploy haproxy writes it)',
    });
  }
  // requestTimeout 0 is no limit at all.
  const nodeRequestMs = options.nodeRequestTimeoutMs === 0 ? Infinity : options.nodeRequestTimeoutMs;
  const readOk = proxy.readMs >= nodeRequestMs;
  findings.push({
    check: `request time: ${options.kind} → Node`,
    severity: readOk ? 'ok' : 'warn',
    found: `${options.kind} waits ${seconds(proxy.readMs)} for an answer, Node allows a request ${nodeRequestMs === Infinity ? 'any time (requestTimeout 0)' : `${seconds(nodeRequestMs)} (its requestTimeout)`}`,
    why: `a request ${options.kind} has given up on (a 504) goes on using Node's time until Node's own limit`,
    fix: readOk
      ? null
      : `server.requestTimeout = ${proxy.readMs} in the app (at most ${options.kind}'s), or raise ${options.kind}'s`,
  });
  return findings;
}

/** A balancer straight in front of Node (no proxy between): its idle timeout must be under Node's keep-alive. */
export function checkFrontToNode(front: { name: string; idleMs: number }, nodeKeepAliveMs: number): Finding {
  const ok = nodeKeepAliveMs === 0 || front.idleMs < nodeKeepAliveMs;
  return {
    check: `idle: ${front.name} → Node`,
    severity: ok ? 'ok' : 'fail',
    found: `${front.name} keeps idle connections ${seconds(front.idleMs)}, Node ${seconds(nodeKeepAliveMs)} (its keepAliveTimeout)`,
    why: `${front.name} reuses its idle connections to Node: if Node closes them first, a request is sent on a closed one (a 502 from ${front.name})`,
    fix: ok
      ? null
      : `server.keepAliveTimeout = ${front.idleMs + 5000} in the app (more than ${front.name}'s ${seconds(front.idleMs)})`,
  };
}

/** What the workers of a running app said of their HTTP servers (the supervisor's `servers`), per worker. */
export interface LiveWorkerServers {
  slot: number;
  servers: HttpServerTimeouts[] | null;
}

/**
 * Node's timeouts as a running app has them: one finding saying what was read (a warning when nothing was, or when
 * the workers disagree), and the values the chain is checked with — where the workers differ, the riskier of each
 * (the shortest keep-alive, the longest request time).
 */
export function liveTimeouts(
  name: string,
  workers: LiveWorkerServers[],
): { finding: Finding; keepAliveMs?: number; requestTimeoutMs?: number } {
  const check = `Node's timeouts: ${name}`;
  const servers = workers.flatMap((w) => w.servers ?? []);
  if (servers.length === 0) {
    const silent = workers.filter((w) => w.servers === null).length;
    return {
      finding: {
        check,
        severity: 'warn',
        found:
          workers.length === 0
            ? 'it has no worker running'
            : silent > 0
              ? `${silent} of ${workers.length} workers did not say (started with --no-http-drain, or busy for 2 s)`
              : `none of its ${workers.length} workers listens with an HTTP server yet`,
        why: "the chain is checked against Node's defaults instead of what the app set",
        fix: 'run doctor again once the app is ready, or give --keep-alive-timeout and --request-timeout',
      },
    };
  }
  const said = (s: HttpServerTimeouts) =>
    `keepAliveTimeout ${seconds(s.keepAliveTimeoutMs)}` +
    (s.keepAliveTimeoutBufferMs ? ` (+${seconds(s.keepAliveTimeoutBufferMs)} buffer)` : '') +
    `, headersTimeout ${seconds(s.headersTimeoutMs)}, requestTimeout ${seconds(s.requestTimeoutMs)}`;
  const kinds = new Set(servers.map(said));
  const addresses = [...new Set(servers.map((s) => s.address))].join(', ');
  const keepAliveMs = Math.min(...servers.map((s) => s.keepAliveTimeoutMs));
  const requestTimeoutMs = Math.max(...servers.map((s) => s.requestTimeoutMs));
  const answered = workers.filter((w) => w.servers !== null).length;
  return {
    keepAliveMs,
    requestTimeoutMs,
    finding: {
      check,
      severity: kinds.size === 1 ? 'ok' : 'warn',
      found: `${answered} of ${workers.length} workers, ${addresses}: ${[...kinds].join('; ')}`,
      why: 'servers of one app with different timeouts: the chain is checked with the riskier of each',
      fix: kinds.size === 1 ? null : 'set the same timeouts on every server the app listens with',
    },
  };
}
