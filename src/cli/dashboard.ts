/**
 * `nodescale dashboard --name APP [--name APP2 …]`: the dashboard (src/dashboard/) of supervisors that already run,
 * one section each (the scale-out demo's API and compute tiers on one page), read through their control sockets.
 * Stays in the foreground until Ctrl-C.
 */
import { invalidOption, NodescaleError } from '../errors.ts';
import { controlActions } from '../dashboard/actions.ts';
import { Collector } from '../dashboard/collector.ts';
import { watchSupervisor, type RemoteSource } from '../dashboard/remote-source.ts';
import { startDashboard } from '../dashboard/server.ts';
import { writeAnnouncement } from '../ipc.ts';
import { defaultControlPath } from '../supervisor/control.ts';
import { COMMON_FLAGS, hostPortFlag, listFlag, parseCommandLine, tokenFileFlag, type OptionSpecs } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  name: { type: 'string', multiple: true },
  listen: { type: 'string' },
  'token-file': { type: 'string' },
  'admin-token-file': { type: 'string' },
  ...COMMON_FLAGS,
} as const satisfies OptionSpecs;

export const help = `Usage: nodescale dashboard --name APP [--name APP2 …] [--listen [HOST:]PORT] [--token-file FILE]
                           [--admin-token-file FILE]

The live dashboard of apps that nodescale run (or start) supervises already, one section each, read through their
control sockets: the workers table, charts, events. The same page as nodescale run --dashboard (docs/dashboard.md).

Options:
      --name APP          an app to show (repeatable), as named to nodescale run --name
      --listen [HOST:]PORT  where the page listens (default 127.0.0.1:9300; port 0: any free one)
      --token-file FILE   the token every request must carry (at least 16 characters); required on any address but
                          loopback
      --admin-token-file FILE  the page's buttons (reload, scale, heap snapshot), each action needing this other
                          token and audited (one JSON line on stderr); without it the dashboard has no action
  -h, --help              this help

Examples:
  nodescale dashboard --name api --name compute          # then open http://127.0.0.1:9300/`;

async function run(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandLine('dashboard', argv, FLAGS, 0);
  const names = listFlag(values, 'name');
  if (names.length === 0) throw new NodescaleError('NS_ERR_USAGE', 'dashboard: give --name APP (one per app)');
  for (const name of names)
    if (!/^[\w.-]+$/.test(name)) throw invalidOption('--name', 'letters, digits, ".", "_" or "-"', name);
  const at = hostPortFlag(values, 'listen') ?? { host: '127.0.0.1', port: 9300 };
  const token = tokenFileFlag(values, 'token-file') ?? null;
  const adminToken = tokenFileFlag(values, 'admin-token-file') ?? null;
  const sources: RemoteSource[] = [];
  const collectors: Collector[] = [];
  const stopAll = () => {
    for (const collector of collectors) collector.close();
    for (const source of sources) source.close();
  };
  try {
    for (const name of names) {
      const source = await watchSupervisor(defaultControlPath(name));
      sources.push(source);
      collectors.push(new Collector(name, source));
      source.on('closed', (why: string) => io.stderr.write(`dashboard: ${name}: ${why}\n`));
    }
  } catch (error) {
    stopAll();
    throw error;
  }
  const admin =
    adminToken === null
      ? null
      : {
          token: adminToken,
          actions: new Map(names.map((name) => [name, controlActions(defaultControlPath(name))])),
          audit: (entry: Record<string, unknown>) =>
            io.stderr.write(
              `${JSON.stringify({ time: new Date().toISOString(), level: 'info', source: 'dashboard', message: 'dashboard action', ...entry })}\n`,
            ),
        };
  const dashboard = await startDashboard({ ...at, token, admin, apps: collectors }).catch((error: unknown) => {
    stopAll();
    throw error;
  });
  writeAnnouncement({ nodescale: 'listening', service: 'dashboard', url: dashboard.url, pid: process.pid });
  io.stderr.write(
    `dashboard: ${names.join(', ')} at ${dashboard.url}${token === null ? '' : ' (open it once as …/?token=…)'}\n`,
  );
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) return resolve();
    io.signal.addEventListener('abort', () => resolve(), { once: true });
    process.once('SIGTERM', () => resolve());
  });
  await dashboard.close();
  stopAll();
  return 0;
}

export const dashboardCommand: Command = { name: 'dashboard', help, run };
