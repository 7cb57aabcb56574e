/**
 * `nodescale dashboard --name APP [--name APP2 …]`: the dashboard (src/dashboard/) of supervisors that already run,
 * one section each (the scale-out demo's API and compute tiers on one page), read through their control sockets.
 * Stays in the foreground until Ctrl-C.
 */
import { invalidOption, NodescaleError } from '../errors.ts';
import { startSupervisorsDashboard } from '../dashboard/supervisors.ts';
import { writeAnnouncement } from '../ipc.ts';
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
  const dashboard = await startSupervisorsDashboard(names, {
    ...at,
    token,
    admin:
      adminToken === null
        ? null
        : {
            token: adminToken,
            audit: (entry) =>
              io.stderr.write(
                `${JSON.stringify({ time: new Date().toISOString(), level: 'info', source: 'dashboard', message: 'dashboard action', ...entry })}\n`,
              ),
          },
    onClosed: (name, why) => io.stderr.write(`dashboard: ${name}: ${why}\n`),
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
  return 0;
}

export const dashboardCommand: Command = { name: 'dashboard', help, run };
