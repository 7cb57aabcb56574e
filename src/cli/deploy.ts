/**
 * `nodescale deploy nginx|haproxy`: the balancer's configuration, built as a model from the flags (src/deploy/),
 * checked, and printed or written (--out). Nothing is written when a check fails.
 */
import { writeFileSync } from 'node:fs';
import { renderHaproxy } from '../deploy/haproxy.ts';
import {
  buildModel,
  connectionsFromSweep,
  DEPLOY_DEFAULTS,
  duration,
  type StaticRoute,
  type TlsName,
} from '../deploy/model.ts';
import { renderNginx } from '../deploy/nginx.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  durationFlag,
  intFlag,
  listFlag,
  parseCommandLine,
  requirePositional,
  sizeFlag,
  textFlag,
} from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  upstream: { type: 'string', multiple: true },
  listen: { type: 'string' },
  host: { type: 'string' },
  'server-name': { type: 'string', multiple: true },
  'tls-cert': { type: 'string', multiple: true },
  'tls-key': { type: 'string', multiple: true },
  hsts: { type: 'boolean' },
  gzip: { type: 'boolean' },
  static: { type: 'string', multiple: true },
  'keep-alive-timeout': { type: 'string' },
  'upstream-idle-timeout': { type: 'string' },
  'read-timeout': { type: 'string' },
  'max-body-size': { type: 'string' },
  'max-conns': { type: 'string' },
  'from-sweep': { type: 'string' },
  'workers-per-upstream': { type: 'string' },
  'access-log': { type: 'string' },
  out: { type: 'string', short: 'o' },
  ...COMMON_FLAGS,
} as const;

const D = DEPLOY_DEFAULTS;

export const help = `Usage: nodescale deploy nginx|haproxy --upstream HOST:PORT [--upstream HOST:PORT …] [options]

The balancer in front of your Node instances, as a complete, commented configuration: least-connections balancing,
keep-alive to the upstreams that never outlives Node's (the keep-alive race: 502s on POSTs), retries on another
upstream for idempotent requests only, passive health (nginx) or active health on /readyz with slowstart (haproxy),
TLS termination with SNI, gzip, static files (nginx), limits matched to the runtime's. Checked before it is written:
a configuration that does not hold is refused (exit 2), nothing written.

Options:
      --upstream HOST:PORT   a Node instance (repeat for each; nodescale run on each host)
      --listen PORT          where clients connect (default 80, or 443 with TLS)
      --host ADDR            the address to listen on (default 0.0.0.0)
      --server-name NAME --tls-cert FILE --tls-key FILE
                             TLS for NAME (repeat the three for several names: SNI); TLS 1.2 and 1.3 only, HTTP/2
      --hsts                 Strict-Transport-Security on TLS responses
      --gzip                 compress text responses above 1 KiB
      --static PREFIX=DIR    serve DIR at PREFIX from the balancer, with cache headers (nginx; repeatable)
      --keep-alive-timeout DUR  the Node side's keepAliveTimeout (default ${duration(D.keepAliveTimeoutMs)}, Node's own)
      --upstream-idle-timeout DUR  the balancer's idle time for upstream connections (default: half of the
                             keep-alive timeout, or 1 s less); refused unless under --keep-alive-timeout
      --read-timeout DUR     the longest a request may take upstream (default ${duration(D.readTimeoutMs)})
      --max-body-size SIZE   the largest request body (default ${formatBytes(D.maxBodyBytes)}, the runtime's maxBodyBytes)
      --max-conns N          connections at most to each upstream
      --from-sweep FILE      --max-conns from the knee of a nodescale sweep (its results.json), times
                             --workers-per-upstream N (default 1)
      --access-log PATH      the balancer's access log (default off)
  -o, --out FILE             write it there instead of printing it
  -h, --help                 this help

Examples:
  nodescale deploy nginx --upstream 10.0.0.11:3000 --upstream 10.0.0.12:3000 --gzip --static /assets=/srv/app/public
  nodescale deploy haproxy --upstream 10.0.0.11:3000 --upstream 10.0.0.12:3000 --from-sweep sweep-out/results.json`;

/** PREFIX=DIR */
function staticRoute(text: string): StaticRoute {
  const at = text.indexOf('=');
  if (at <= 0) throw invalidOption('--static', 'PREFIX=DIR (/assets=/srv/app/public)', text);
  return { prefix: text.slice(0, at), dir: text.slice(at + 1) };
}

export function parseDeployArgs(argv: string[]) {
  const { values, positionals } = parseCommandLine('deploy', argv, FLAGS, 1);
  const server = requirePositional('deploy', positionals, 'the balancer: nginx or haproxy');
  if (server !== 'nginx' && server !== 'haproxy')
    throw new NodescaleError('NS_ERR_USAGE', `deploy: unknown balancer "${server}"; expected nginx or haproxy`);
  const names = listFlag(values, 'server-name');
  const certs = listFlag(values, 'tls-cert');
  const keys = listFlag(values, 'tls-key');
  if (certs.length !== keys.length || (names.length > 0 && names.length !== certs.length))
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'deploy: give --tls-cert and --tls-key together, once per --server-name (or one of each without a name)',
    );
  const tls: TlsName[] = certs.map((cert, i) => ({ serverName: names[i] ?? '_', cert, key: keys[i]! }));
  const listen = intFlag(values, 'listen');
  if (listen !== undefined && !(listen >= 1 && listen <= 65_535))
    throw invalidOption('--listen', 'a port from 1 to 65535', listen);
  const sweep = textFlag(values, 'from-sweep');
  const perUpstream = intFlag(values, 'workers-per-upstream') ?? 1;
  if (!(perUpstream >= 1)) throw invalidOption('--workers-per-upstream', 'a whole number ≥ 1', perUpstream);
  const maxConns = intFlag(values, 'max-conns');
  if (sweep !== undefined && maxConns !== undefined)
    throw new NodescaleError('NS_ERR_USAGE', 'deploy: give --max-conns or --from-sweep, not both');
  return {
    server,
    out: textFlag(values, 'out') ?? null,
    options: {
      upstreams: listFlag(values, 'upstream'),
      ...(listen === undefined ? {} : { listen }),
      ...(textFlag(values, 'host') === undefined ? {} : { listenHost: textFlag(values, 'host')! }),
      tls,
      hsts: boolFlag(values, 'hsts'),
      gzip: boolFlag(values, 'gzip'),
      static: listFlag(values, 'static').map(staticRoute),
      ...optional('keepAliveTimeoutMs', durationFlag(values, 'keep-alive-timeout')),
      ...optional('upstreamIdleMs', durationFlag(values, 'upstream-idle-timeout')),
      ...optional('readTimeoutMs', durationFlag(values, 'read-timeout')),
      ...optional('maxBodyBytes', sizeFlag(values, 'max-body-size')),
      ...optional('accessLog', textFlag(values, 'access-log')),
      maxConnsPerUpstream: sweep === undefined ? (maxConns ?? null) : connectionsFromSweep(sweep, perUpstream),
    },
  } as const;
}

const optional = <K extends string, V>(key: K, value: V | undefined) =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseDeployArgs(argv);
  const model = buildModel(args.options);
  const text = args.server === 'nginx' ? renderNginx(model) : renderHaproxy(model);
  if (args.out === null) io.stdout.write(text);
  else {
    try {
      writeFileSync(args.out, text);
    } catch (error) {
      throw new NodescaleError('NS_ERR_OUTPUT', `cannot write ${args.out}: ${(error as NodeJS.ErrnoException).code}`);
    }
    io.stderr.write(`deploy: wrote ${args.out} (${args.server}, ${model.upstreams.length} upstream(s))\n`);
  }
  return 0;
}

export const deployCommand: Command = { name: 'deploy', help, run };
