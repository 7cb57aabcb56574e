/**
 * The timeout chain, checked hop by hop (`nodescale doctor --proxy FILE`): on each hop that keeps idle connections to
 * reuse them, the side that reuses must give up on an idle connection before the side that closes it does, or it
 * sends a request on a connection already closed (the keep-alive race, a 502 or a reset). The balancer's timeouts
 * are read from its configuration file (nginx or haproxy), with each server's own defaults where a value is not set.
 */
import { NodescaleError } from '../errors.ts';
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
  /** How long it keeps an idle upstream connection to reuse, or null when it does not reuse them. */
  upstreamIdleMs: number | null;
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
      readMs: nginxTime(/\bproxy_read_timeout\s+(\S+?)\s*;/.exec(text)?.[1] ?? '60s'),
    };
  }
  const purge = [...text.matchAll(/\bpool-purge-delay\s+(\S+)/g)].map((m) => haproxyTime(m[1]!));
  const timeouts = new Map<string, number>();
  for (const [, name, value] of text.matchAll(/\btimeout\s+(\S+)\s+(\S+)/g))
    if (!timeouts.has(name!)) timeouts.set(name!, haproxyTime(value!));
  return {
    clientIdleMs: timeouts.get('http-keep-alive') ?? timeouts.get('client') ?? 0,
    // haproxy keeps idle server connections for reuse unless told never to, and starts purging them after
    // pool-purge-delay (5 s by default; half of them each time: the delay is the least an idle one lives).
    upstreamIdleMs: /\bhttp-reuse\s+never\b/.test(text) ? null : purge.length > 0 ? Math.max(...purge) : 5000,
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
  if (proxy.upstreamIdleMs !== null) {
    const ok = proxy.upstreamIdleMs < options.nodeKeepAliveMs;
    findings.push({
      check: `idle: ${options.kind} → Node`,
      severity: ok ? 'ok' : 'fail',
      found: `${options.kind} keeps idle upstream connections ${seconds(proxy.upstreamIdleMs)}, Node ${seconds(options.nodeKeepAliveMs)} (its keepAliveTimeout)`,
      why: `${options.kind} reuses idle connections to Node: if Node closes them first, a request is sent on a closed one (sporadic 502s, on POSTs, which are not retried)`,
      fix: ok
        ? null
        : options.kind === 'nginx'
          ? `keepalive_timeout ${duration(defaultUpstreamIdle(options.nodeKeepAliveMs))}; in the upstream block (nodescale deploy nginx writes it)`
          : `pool-purge-delay ${duration(defaultUpstreamIdle(options.nodeKeepAliveMs))} on the servers (nodescale deploy haproxy writes it)`,
    });
  }
  const readOk = proxy.readMs >= options.nodeRequestTimeoutMs;
  findings.push({
    check: `request time: ${options.kind} → Node`,
    severity: readOk ? 'ok' : 'warn',
    found: `${options.kind} waits ${seconds(proxy.readMs)} for an answer, Node allows a request ${seconds(options.nodeRequestTimeoutMs)} (its requestTimeout)`,
    why: `a request ${options.kind} has given up on (a 504) goes on using Node's time until Node's own limit`,
    fix: readOk
      ? null
      : `server.requestTimeout = ${proxy.readMs} in the app (at most ${options.kind}'s), or raise ${options.kind}'s`,
  });
  return findings;
}
