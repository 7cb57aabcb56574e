/**
 * pm2's ecosystem file turned into nodescale.config.json (`nodescale import-pm2`): the keys with a meaning here are
 * carried over, and every other one is listed with what to do instead, never dropped in silence. pm2's keys and their
 * meaning: pm2's docs (Application declaration, "Ecosystem File").
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NodescaleError } from '../errors.ts';
import { checkConfig } from './config.ts';

export interface Imported {
  /** The config, as nodescale.config.json holds it (checked: it loads). */
  config: { apps: Record<string, unknown>[] };
  /** What was not carried over: app, key, why or what to do instead. */
  left: { app: string; key: string; why: string }[];
}

/** Keys nodescale has no place for, and what to do instead. */
const NOT_CARRIED: Record<string, string> = {
  watch: 'watch mode is for development: nodescale run app.js --watch',
  ignore_watch: 'nodescale run --watch-ignore GLOB',
  watch_options: 'nodescale run --watch',
  autorestart: 'a crashed worker is always restarted (with backoff), until a crash loop ends it',
  min_uptime: 'the crash policy counts a worker up 60 s as stable',
  restart_delay: 'restarts back off exponentially with jitter',
  exp_backoff_restart_delay: 'restarts back off exponentially with jitter',
  cron_restart: 'restart from cron or a systemd timer: nodescale restart NAME',
  out_file: 'the supervisor writes one log per app, rotated: nodescale logs NAME',
  error_file: 'the supervisor writes one log per app, rotated: nodescale logs NAME',
  log_file: 'the supervisor writes one log per app, rotated: nodescale logs NAME',
  merge_logs: 'every worker is in one log, each line tagged with its worker',
  combine_logs: 'every worker is in one log, each line tagged with its worker',
  log_date_format: 'every line has an ISO time',
  log_type: 'the log is JSON lines (nodescale logs --json)',
  pid_file: 'nodescale ls lists the pids',
  time: 'every line has an ISO time',
  vizion: 'no version metadata is kept',
  post_update: 'no deploy hooks: run them before nodescale reload',
  force: 'one app of a name runs once',
  source_map_support: 'use --node-arg=--enable-source-maps (nodeArgs)',
  instance_var: 'each worker has NODESCALE_WORKER_SLOT (0, 1, …)',
  increment_var: 'each worker has NODESCALE_WORKER_SLOT (0, 1, …)',
  filter_env: 'the app gets the environment nodescale start was given, and its env',
  treekill: 'the supervisor stops its workers and nothing else',
  shutdown_with_message: 'workers are stopped with SIGTERM',
  kill_retry_time: 'a worker that has not drained by grace is killed',
  stop_exit_codes: 'a worker that exits is restarted unless the supervisor stops it',
  namespace: 'apps are named, not grouped',
  appendEnvToName: 'apps are named once',
};

const stringArgs = (value: unknown): string[] | null => {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  if (typeof value !== 'string') return null;
  // pm2 splits a string of arguments on spaces, quotes kept together.
  return [...value.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
};

/** pm2's sizes: 300M, 1G, 512K, or bytes. */
function pm2Size(value: unknown): string | null {
  if (typeof value === 'number') return String(value);
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*([KMG])?B?$/i.exec(value.trim()) : null;
  if (match === null) return null;
  return match[2] === undefined ? match[1]! : `${match[1]}${match[2].toLowerCase()}b`;
}

export async function loadEcosystem(file: string): Promise<unknown> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) throw new NodescaleError('NS_ERR_CONFIG', `${path.basename(absolute)}: no such file`);
  try {
    if (absolute.endsWith('.json')) return JSON.parse(readFileSync(absolute, 'utf8'));
    if (absolute.endsWith('.mjs'))
      return ((await import(pathToFileURL(absolute).href)) as { default: unknown }).default;
    // ecosystem.config.js is CommonJS (module.exports = { apps }), what pm2 init writes; an ESM one is imported.
    try {
      return createRequire(absolute)(absolute) as unknown;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw error;
      return ((await import(pathToFileURL(absolute).href)) as { default: unknown }).default;
    }
  } catch (error) {
    const message = (error as Error).message;
    throw new NodescaleError(
      'NS_ERR_CONFIG',
      `${path.basename(absolute)}: ${
        /module is not defined/.test(message)
          ? `${message}: a CommonJS file in an ESM package ("type": "module"): rename it to ${path.basename(absolute).replace(/\.js$/, '.cjs')}`
          : message
      }`,
      { cause: error },
    );
  }
}

export function importPm2(ecosystem: unknown, file = 'ecosystem.config.js'): Imported {
  const root = ecosystem as { apps?: unknown; deploy?: unknown } | null;
  const apps = Array.isArray(root) ? root : root?.apps;
  if (!Array.isArray(apps) || apps.length === 0)
    throw new NodescaleError('NS_ERR_CONFIG', `${path.basename(file)}: no apps (pm2's file has { apps: [ … ] })`);
  const left: Imported['left'] = [];
  if (root !== null && !Array.isArray(root) && root.deploy !== undefined)
    left.push({ app: '(file)', key: 'deploy', why: 'no deploy hooks: deploy the code, then nodescale reload' });
  const out = apps.map((raw: unknown, i: number) => {
    if (typeof raw !== 'object' || raw === null)
      throw new NodescaleError('NS_ERR_CONFIG', `${path.basename(file)}: apps[${i}] is not an object`);
    const app = raw as Record<string, unknown>;
    const name = typeof app.name === 'string' ? app.name : `apps[${i}]`;
    const to: Record<string, unknown> = {};
    const leave = (key: string, why: string) => left.push({ app: name, key, why });
    for (const [key, value] of Object.entries(app)) {
      switch (key) {
        case 'name':
        case 'script':
        case 'cwd':
          to[key] = value;
          break;
        case 'args': {
          const args = stringArgs(value);
          if (args === null) leave(key, 'not a string or a list of strings');
          else to.args = args;
          break;
        }
        case 'node_args':
        case 'interpreter_args': {
          const args = stringArgs(value);
          if (args === null) leave(key, 'not a string or a list of strings');
          else to.nodeArgs = [...((to.nodeArgs as string[] | undefined) ?? []), ...args];
          break;
        }
        case 'instances':
          // pm2: 0 or 'max' is one per CPU; -1 is one less (nodescale has no such count: auto).
          if (value === 'max' || value === 0 || value === '0') to.workers = 'auto';
          else if (value === -1 || value === '-1') {
            to.workers = 'auto';
            leave(key, '-1 (CPUs less one) became "auto" (the usable CPUs): set a number if one must be left free');
          } else if (Number.isInteger(Number(value)) && Number(value) >= 1) to.workers = Number(value);
          else leave(key, `not a count: ${JSON.stringify(value)}`);
          break;
        case 'exec_mode':
          if (value === 'fork' || value === 'fork_mode') {
            to.workers ??= 1;
            leave(key, 'fork: nodescale always runs workers with node:cluster on one port; 1 worker is the nearest');
          }
          break;
        case 'env':
          to.env = value;
          break;
        case 'max_memory_restart': {
          const size = pm2Size(value);
          if (size === null) leave(key, `not a size: ${JSON.stringify(value)}`);
          else to.maxMemory = size;
          break;
        }
        case 'kill_timeout':
          if (typeof value === 'number') to.grace = value;
          else leave(key, 'not a number of milliseconds');
          break;
        case 'listen_timeout':
          if (typeof value === 'number') to.readyTimeout = value;
          else leave(key, 'not a number of milliseconds');
          break;
        case 'wait_ready':
          if (value === true) to.readyOn = 'message';
          break;
        case 'max_restarts':
          if (Number.isInteger(value)) to.maxRestarts = value;
          else leave(key, 'not a count');
          break;
        case 'interpreter':
          if (typeof value === 'string' && !/(^|\/)node$/.test(value))
            leave(key, `${value}: nodescale runs Node.js apps (node:cluster workers)`);
          break;
        default:
          if (key.startsWith('env_')) to[key] = value;
          else leave(key, NOT_CARRIED[key] ?? 'nodescale has no such setting');
      }
    }
    return to;
  });
  // What is written must load: checked as nodescale start would check it.
  checkConfig('nodescale.config.json', { apps: out });
  return { config: { apps: out }, left };
}
