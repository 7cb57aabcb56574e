/**
 * `nodescale deploy nginx|haproxy`: the balancer's configuration, built as a model from the flags (src/deploy/),
 * checked, and printed or written (--out). Nothing is written when a check fails.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { renderSystemdUnit } from '../deploy/systemd.ts';
import { SUPERVISOR_DEFAULTS } from '../supervisor/options.ts';
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

/** The CLI's own entry, which the unit runs (bin/nodescale.js beside this package). */
const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));

export const help = `Usage: nodescale deploy nginx|haproxy --upstream HOST:PORT [--upstream HOST:PORT …] [options]
       nodescale deploy systemd --name APP [--out FILE] [--user U] [run's options] -- <app> [args]

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

systemd: a unit for nodescale run (Type=notify: ready once every worker is; the watchdog; systemctl reload is a
rolling reload; a graceful stop within --grace; LimitNOFILE; hardening), checked with systemd-analyze verify in the
tests. run's options (-w, --grace, --metrics, …) are checked as nodescale run checks them.
      --name APP             the unit's and the supervisor's name (required)
      --user U               run as this user
      --limit-nofile N       the open-file limit (default 65536: nodescale doctor)

Examples:
  nodescale deploy systemd --name api -w auto --metrics 9100 -o api.service -- server.js --port 3000
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

const SYSTEMD_FLAGS = {
  name: { type: 'string' },
  user: { type: 'string' },
  'limit-nofile': { type: 'string' },
  out: { type: 'string', short: 'o' },
  ...COMMON_FLAGS,
} as const;

/** `deploy systemd`'s own flags come first; the rest up to `--` are nodescale run's, checked as run checks them. */
export async function parseSystemdArgs(argv: string[]) {
  const dash = argv.indexOf('--');
  if (dash === -1)
    throw new NodescaleError('NS_ERR_USAGE', 'deploy systemd: give the app after --: … -- server.js [args]');
  const { RUN_FLAGS, parseRunArgs } = await import('./supervise.ts');
  // nodescale run's flags that take no value, from its own table.
  const runBooleans = new Set(
    Object.entries(RUN_FLAGS as Record<string, { type: string; short?: string }>)
      .filter(([, spec]) => spec.type === 'boolean')
      .flatMap(([flag, spec]) => [flag, ...(spec.short === undefined ? [] : [spec.short])]),
  );
  const own: string[] = [];
  const runFlags: string[] = [];
  const before = argv.slice(0, dash);
  for (let i = 0; i < before.length; i++) {
    const flag = before[i]!;
    const given = flag.replace(/^--?/, '').split('=')[0]!;
    const name = given === 'o' ? 'out' : given;
    const target = name in SYSTEMD_FLAGS ? own : runFlags;
    target.push(flag);
    // A flag's value goes with it (run's boolean flags take none).
    const spec = (SYSTEMD_FLAGS as Record<string, { type: string }>)[name];
    const takesValue = spec !== undefined ? spec.type === 'string' : !runBooleans.has(name);
    if (!flag.includes('=') && takesValue && i + 1 < before.length) target.push(before[++i]!);
  }
  const { values } = parseCommandLine('deploy systemd', own, SYSTEMD_FLAGS, 0);
  const name = textFlag(values, 'name');
  if (name === undefined) throw new NodescaleError('NS_ERR_USAGE', 'deploy systemd: give --name APP');
  const [app, ...appArgs] = argv.slice(dash + 1);
  if (app === undefined) throw new NodescaleError('NS_ERR_USAGE', 'deploy systemd: give the app after --');
  const limitNofile = intFlag(values, 'limit-nofile') ?? 65_536;
  if (!(limitNofile >= 1024)) throw invalidOption('--limit-nofile', 'a whole number ≥ 1024', limitNofile);
  const runArgs = [path.resolve(app), ...runFlags, '--name', name, '--', ...appArgs];
  // As nodescale run will read them: an app that is not there, a bad flag, fail now.
  const parsed = parseRunArgs(runArgs);
  return {
    name,
    out: textFlag(values, 'out') ?? null,
    user: textFlag(values, 'user'),
    limitNofile,
    runArgs,
    graceMs: parsed.supervisor.graceMs ?? SUPERVISOR_DEFAULTS.graceMs,
  };
}

function write(out: string | null, text: string, io: Io, what: string): void {
  if (out === null) return void io.stdout.write(text);
  try {
    writeFileSync(out, text);
  } catch (error) {
    throw new NodescaleError('NS_ERR_OUTPUT', `cannot write ${out}: ${(error as NodeJS.ErrnoException).code}`);
  }
  io.stderr.write(`deploy: wrote ${out} (${what})\n`);
}

async function run(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'systemd' && !argv.includes('--help') && !argv.includes('-h')) {
    const args = await parseSystemdArgs(argv.slice(1));
    const unit = renderSystemdUnit({
      name: args.name,
      node: process.execPath,
      bin: BIN,
      runArgs: args.runArgs,
      workingDirectory: process.cwd(),
      graceMs: args.graceMs,
      limitNofile: args.limitNofile,
      watchdogSec: 30,
      ...(args.user === undefined ? {} : { user: args.user }),
    });
    write(args.out, unit, io, `systemd unit ${args.name}`);
    return 0;
  }
  const args = parseDeployArgs(argv);
  const model = buildModel(args.options);
  const text = args.server === 'nginx' ? renderNginx(model) : renderHaproxy(model);
  write(args.out, text, io, `${args.server}, ${model.upstreams.length} upstream(s)`);
  return 0;
}

export const deployCommand: Command = { name: 'deploy', help, run };
