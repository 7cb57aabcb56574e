/**
 * `nodescale top --name APP`: the dashboard's table and two sparklines in the terminal, redrawn in place once a
 * second from the supervisor's control socket (`watch`, as `nodescale dashboard` reads it). `q` (or Ctrl-C) quits,
 * `s` sorts by the next column. The frame is made by `topFrame()`, a pure view of the collector's last points: it
 * fits the terminal (columns dropped on a narrow one, rows cut with "… N more" on a short one), so 80×24 and 64
 * workers both work, and it costs the supervisor what the dashboard does.
 */
import { NodescaleError } from '../errors.ts';
import { Collector, type AppPoint, type WorkerRow } from '../dashboard/collector.ts';
import { watchSupervisor } from '../dashboard/remote-source.ts';
import { COMMON_FLAGS, parseCommandLine, textFlag, type OptionSpecs } from './args.ts';
import type { Command, Io } from './io.ts';
import { controlPath } from './supervise.ts';

const FLAGS = { name: { type: 'string' }, control: { type: 'string' }, ...COMMON_FLAGS } as const satisfies OptionSpecs;

export const help = `Usage: nodescale top --name APP

The workers of an app that nodescale run (or start) supervises, live in this terminal: a table like pm2 ls with the
runtime's figures (event-loop delay p99, utilisation, CPU, heap, req/s, in flight, shed), and sparklines of the app's
requests/s and its worst worker's event-loop delay. Keys: q quit, s sort by the next column.

Options:
      --name APP      the app, as named to nodescale run --name
      --control PATH  its control socket, instead of --name
  -h, --help          this help

Examples:
  nodescale top --name api`;

const mib = (bytes: number | null) => (bytes === null ? '–' : `${Math.round(bytes / 1048576)}M`);
const num = (value: number | null, digits = 0) => (value === null ? '–' : value.toFixed(digits));
const since = (s: number) => (s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`);

/** Columns, most wanted first: a narrow terminal drops from the end of this list (the table keeps its order). */
const COLUMNS: { label: string; width: number; key: keyof WorkerRow; cell: (w: WorkerRow) => string; order: number }[] =
  [
    { label: 'slot', width: 4, key: 'slot', cell: (w) => String(w.slot), order: 0 },
    { label: 'pid', width: 7, key: 'pid', cell: (w) => String(w.pid), order: 1 },
    { label: 'state', width: 8, key: 'state', cell: (w) => w.state, order: 3 },
    { label: 'loop p99', width: 8, key: 'eventLoopDelayP99Ms', cell: (w) => num(w.eventLoopDelayP99Ms, 1), order: 9 },
    { label: 'req/s', width: 7, key: 'requestsPerSecond', cell: (w) => num(w.requestsPerSecond), order: 11 },
    { label: 'cpu%', width: 5, key: 'cpuPercent', cell: (w) => num(w.cpuPercent), order: 8 },
    { label: 'rss', width: 6, key: 'rssBytes', cell: (w) => mib(w.rssBytes), order: 6 },
    { label: 'util', width: 5, key: 'utilization', cell: (w) => num(w.utilization, 2), order: 10 },
    { label: 'up', width: 5, key: 'uptimeSeconds', cell: (w) => since(w.uptimeSeconds), order: 4 },
    { label: 'rst', width: 4, key: 'restarts', cell: (w) => String(w.restarts), order: 5 },
    { label: 'shed/s', width: 6, key: 'shedPerSecond', cell: (w) => num(w.shedPerSecond), order: 13 },
    { label: 'heap', width: 6, key: 'heapUsedBytes', cell: (w) => mib(w.heapUsedBytes), order: 7 },
    { label: 'gen', width: 4, key: 'generation', cell: (w) => String(w.generation), order: 2 },
    { label: 'infl', width: 5, key: 'inFlight', cell: (w) => num(w.inFlight), order: 12 },
  ];

const BARS = '▁▂▃▄▅▆▇█';

/** The last `width` values as a sparkline, scaled to their maximum (nulls as spaces). */
export function sparkline(values: (number | null)[], width: number): string {
  const shown = values.slice(-width);
  const max = Math.max(0, ...shown.map((v) => v ?? 0));
  return shown
    .map((v) => (v === null ? ' ' : BARS[max === 0 ? 0 : Math.min(7, Math.floor((v / max) * 7.999))]!))
    .join('')
    .padStart(width);
}

export interface TopView {
  name: string;
  points: readonly AppPoint[];
  workers: readonly WorkerRow[];
  sortKey: keyof WorkerRow;
  columns: number;
  rows: number;
}

/** One frame: its lines, none wider than the terminal, no more of them than its rows. */
export function topFrame(view: TopView): string[] {
  const last = view.points.at(-1);
  const fit = (line: string) => (line.length > view.columns ? line.slice(0, view.columns) : line);
  const lines: string[] = [
    fit(
      `nodescale top — ${view.name}: ${view.workers.length} workers, ${num(last?.requestsPerSecond ?? null)} req/s, ` +
        `p99 ${num(last?.p99Ms ?? null, 1)} ms, worst loop p99 ${num(last?.eventLoopDelayP99Ms ?? null, 1)} ms`,
    ),
  ];
  const spark = Math.max(10, view.columns - 16);
  lines.push(
    fit(
      `req/s          ${sparkline(
        view.points.map((p) => p.requestsPerSecond),
        spark,
      )}`,
    ),
  );
  lines.push(
    fit(
      `loop p99 worst ${sparkline(
        view.points.map((p) => p.eventLoopDelayP99Ms),
        spark,
      )}`,
    ),
  );
  lines.push(fit(`q quit, s sort (by ${COLUMNS.find((c) => c.key === view.sortKey)?.label ?? view.sortKey})`));
  // As many columns as fit, the most wanted first, shown in table order.
  const chosen = new Set<(typeof COLUMNS)[number]>();
  let used = 0;
  for (const column of [...COLUMNS]) {
    if (used + column.width + 1 > view.columns) continue;
    chosen.add(column);
    used += column.width + 1;
  }
  const shown = COLUMNS.filter((c) => chosen.has(c)).sort((a, b) => a.order - b.order);
  const row = (cells: string[]) => shown.map((c, i) => cells[i]!.padStart(c.width)).join(' ');
  lines.push(row(shown.map((c) => c.label)));
  // Identities ascending; figures descending, the busiest first (as top does).
  const direction = ['slot', 'pid', 'state'].includes(view.sortKey) ? 1 : -1;
  const sorted = [...view.workers].sort((a, b) => {
    const x = a[view.sortKey] ?? -Infinity;
    const y = b[view.sortKey] ?? -Infinity;
    return (x < y ? -direction : x > y ? direction : 0) || a.slot - b.slot;
  });
  const room = view.rows - lines.length;
  const fits = sorted.length <= room ? sorted.length : Math.max(0, room - 1);
  for (const worker of sorted.slice(0, fits)) lines.push(row(shown.map((c) => c.cell(worker))));
  if (fits < sorted.length) lines.push(`… ${sorted.length - fits} more (a taller terminal shows them)`);
  return lines.slice(0, view.rows);
}

async function run(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandLine('top', argv, FLAGS, 0);
  const terminal = io.terminal;
  if (terminal === undefined || terminal.stdin === null)
    throw new NodescaleError('NS_ERR_USAGE', 'top draws in a terminal: for scripts, nodescale status --json');
  const name = textFlag(values, 'name') ?? 'app';
  const source = await watchSupervisor(controlPath(values, null));
  const collector = new Collector(name, source);
  const out = io.stdout;
  let sortKey: keyof WorkerRow = 'slot';
  const draw = () => {
    const { points, workers } = collector.snapshot();
    const rows = (out as NodeJS.WriteStream).rows ?? 24;
    const frame = topFrame({ name, points, workers, sortKey, columns: terminal.columns(), rows });
    out.write(`\x1b[H${frame.join('\x1b[K\n')}\x1b[K\x1b[J`);
  };
  out.write('\x1b[?1049h\x1b[?25l'); // the alternate screen, no cursor: the terminal is as it was after
  const stdin = terminal.stdin;
  stdin.setRawMode?.(true);
  stdin.resume();
  try {
    await new Promise<void>((resolve) => {
      collector.on('point', draw);
      source.on('closed', () => resolve());
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      stdin.on('data', (key: Buffer) => {
        const pressed = key.toString('utf8');
        if (pressed === 'q' || pressed === '\u0003') return resolve();
        if (pressed === 's') {
          const keys = COLUMNS.map((c) => c.key);
          sortKey = keys[(keys.indexOf(sortKey) + 1) % keys.length]!;
          draw();
        }
      });
      draw();
    });
  } finally {
    stdin.setRawMode?.(false);
    stdin.pause();
    out.write('\x1b[?25h\x1b[?1049l');
    collector.close();
    source.close();
  }
  return 0;
}

export const topCommand: Command = { name: 'top', help, run };
