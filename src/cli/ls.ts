/**
 * `nodescale ls`: every app of this user, from what is on disk (the apps' directories, the control sockets) and
 * what each supervisor answers now, never from a dump. A supervisor that does not answer is shown for what it is:
 * dead (its process gone, its socket left), stopped (gone, cleanly), or not answering (its process there, frozen or
 * stuck): never as running. `--prune` removes what the dead and the stopped left.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { appDir, appNames, readStartRecord } from '../apps/home.ts';
import type { HttpServerTimeouts } from '../ipc.ts';
import { askSupervisor, controlPid, controlPidFile, defaultControlPath } from '../supervisor/control.ts';
import { formatBytes } from '../units.ts';
import { renderColumns } from '../views/columns.ts';
import { boolFlag, COMMON_FLAGS, parseCommandLine } from './args.ts';
import type { Command, Io } from './io.ts';

export type AppState = 'online' | 'starting' | 'not answering' | 'dead' | 'stopped';

export interface AppRow {
  name: string;
  state: AppState;
  pid: number | null;
  workers: { ready: number; total: number } | null;
  generation: number | null;
  uptimeSeconds: number | null;
  restarts: number | null;
  /** CPU of the supervisor and its workers over the sampling time, % of one core. */
  cpuPercent: number | null;
  rssBytes: number | null;
  /** Where its HTTP servers listen (as the workers say). */
  listening: string[];
  /** Its log file, or null for a foreground `nodescale run` (its output is its terminal's). */
  log: string | null;
}

interface Status {
  pid: number;
  since: string;
  started: boolean;
  workers: { pid: number; state: string; generation: number; restarts: number }[];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Names of supervisors with a control socket (run-NAME.sock; the workers' consoles are not supervisors). */
function socketNames(): string[] {
  try {
    return readdirSync(path.dirname(defaultControlPath('x')))
      .filter((file) => /^run-[\w.-]+\.sock$/.test(file) && !/-w\d+\.\d+\.sock$/.test(file))
      .map((file) => file.slice('run-'.length, -'.sock'.length));
  } catch {
    return [];
  }
}

/** utime + stime of a process, in clock ticks (100 a second on Linux), or null when it is gone. */
function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

function rss(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

async function rowOf(name: string): Promise<{ row: AppRow; pids: number[] }> {
  const control = defaultControlPath(name);
  const record = readStartRecord(name);
  const log = record?.logFile ?? null;
  const empty = {
    workers: null,
    generation: null,
    uptimeSeconds: null,
    restarts: null,
    cpuPercent: null,
    rssBytes: null,
  };
  let status: Status;
  try {
    status = (await askSupervisor(control, 'status', {}, 1500)) as Status;
  } catch {
    // The supervisor's own word beside its socket (a foreground run has no start.json), else start.json's.
    const pid = controlPid(control) ?? record?.pid ?? null;
    const socket = existsSync(control);
    const state: AppState = pid !== null && alive(pid) ? 'not answering' : socket ? 'dead' : 'stopped';
    return { row: { name, state, pid, ...empty, listening: [], log }, pids: [] };
  }
  const servers = await askSupervisor(control, 'servers', {}, 2500).then(
    (answer) => (answer as { workers: { servers: HttpServerTimeouts[] | null }[] }).workers,
    () => [],
  );
  const listening = [...new Set(servers.flatMap((w) => (w.servers ?? []).map((s) => s.address)))];
  const pids = [status.pid, ...status.workers.map((w) => w.pid)];
  const sizes = pids.map(rss);
  return {
    row: {
      name,
      state: status.started ? 'online' : 'starting',
      pid: status.pid,
      workers: { ready: status.workers.filter((w) => w.state === 'ready').length, total: status.workers.length },
      generation: Math.max(0, ...status.workers.map((w) => w.generation)),
      uptimeSeconds: Math.round((Date.now() - Date.parse(status.since)) / 1000),
      restarts: status.workers.reduce((sum, w) => sum + w.restarts, 0),
      cpuPercent: null,
      rssBytes: sizes.every((s) => s === null) ? null : sizes.reduce<number>((sum, s) => sum + (s ?? 0), 0),
      listening,
      log,
    },
    pids,
  };
}

/** Every app of this user, each asked at once; CPU sampled over `sampleMs` for all of them together. */
export async function listApps(sampleMs = 250): Promise<AppRow[]> {
  const names = [...new Set([...appNames(), ...socketNames()])].sort();
  const found = await Promise.all(names.map(rowOf));
  const before = found.map(({ pids }) => pids.map(cpuTicks));
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  found.forEach(({ row, pids }, i) => {
    if (pids.length === 0) return;
    const after = pids.map(cpuTicks);
    let ticks = 0;
    after.forEach((t, j) => {
      const b = before[i]![j];
      if (t !== null && b !== null && b !== undefined) ticks += t - b;
    });
    row.cpuPercent = (ticks / 100 / (sampleMs / 1000)) * 100;
  });
  return found.map(({ row }) => row);
}

/** Removes what dead and stopped apps left (their directories, logs included, and stale sockets). */
export function prune(rows: AppRow[]): AppRow[] {
  const gone = rows.filter((row) => row.state === 'dead' || row.state === 'stopped');
  for (const row of gone) {
    rmSync(appDir(row.name), { recursive: true, force: true });
    rmSync(defaultControlPath(row.name), { force: true });
    rmSync(controlPidFile(defaultControlPath(row.name)), { force: true });
  }
  return gone;
}

const uptime = (s: number) =>
  s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m`
      : s < 86_400
        ? `${Math.floor(s / 3600)}h`
        : `${Math.floor(s / 86_400)}d`;

export function lsView(rows: AppRow[]): string {
  if (rows.length === 0) return 'no apps (nodescale start app.js starts one)\n';
  const dash = '—';
  const table = [['name', 'state', 'pid', 'workers', 'gen', 'uptime', 'restarts', 'cpu', 'rss', 'listening', 'log']];
  for (const r of rows)
    table.push([
      r.name,
      r.state,
      r.pid === null ? dash : String(r.pid),
      r.workers === null ? dash : `${r.workers.ready}/${r.workers.total}`,
      r.generation === null ? dash : String(r.generation),
      r.uptimeSeconds === null ? dash : uptime(r.uptimeSeconds),
      r.restarts === null ? dash : String(r.restarts),
      r.cpuPercent === null ? dash : `${r.cpuPercent.toFixed(0)}%`,
      r.rssBytes === null ? dash : formatBytes(r.rssBytes),
      r.listening.length === 0 ? dash : r.listening.join(','),
      r.log === null ? (r.state === 'online' ? 'its terminal' : dash) : r.log,
    ]);
  return `${renderColumns(table)}\n`;
}

const FLAGS = { prune: { type: 'boolean' }, ...COMMON_FLAGS } as const;

export const lsHelp = `Usage: nodescale ls [--json] [--prune]

Every app of this user — started with nodescale start, or running in a terminal under nodescale run — asked now:
state, supervisor pid, workers ready/total, generation, uptime, restarts, CPU (% of a core, supervisor and workers),
RSS, where it listens, its log. An app whose supervisor does not answer is dead (killed: its socket left behind),
stopped, or not answering (its process is there, frozen or stuck), never shown as running.

Options:
      --prune   remove what dead and stopped apps left: their directories (logs included) and sockets
      --json    one JSON array
  -h, --help    this help`;

async function ls(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandLine('ls', argv, FLAGS, 0);
  let rows = await listApps();
  if (boolFlag(values, 'prune')) {
    const gone = prune(rows);
    for (const row of gone) io.stderr.write(`ls: removed ${row.name} (${row.state})\n`);
    rows = rows.filter((row) => !gone.includes(row));
  }
  io.stdout.write(boolFlag(values, 'json') ? `${JSON.stringify(rows)}\n` : lsView(rows));
  return 0;
}

export const lsCommand: Command = { name: 'ls', help: lsHelp, run: ls };
