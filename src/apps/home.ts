/**
 * Where the apps `nodescale start` runs in the background keep their state: one private directory per app under
 * the user's state home, with no daemon over them.
 *
 *   $NODESCALE_HOME (default $XDG_STATE_HOME/nodescale, else ~/.local/state/nodescale)
 *     apps/<name>/start.json       how it was started (run's arguments, cwd) and the supervisor's pid
 *     apps/<name>/supervisor.out   the supervisor process's own stdout and stderr (what it says before it logs)
 *     apps/<name>/logs/app.log     the app's log: every worker's lines and the supervisor's, JSON, rotated (.1 … .N)
 *
 * The control socket stays where `nodescale run` puts it (a private directory under the temporary directory: a
 * socket's path has 107 bytes at most, which a home directory can exceed). Nothing here is a dump to restore: start.json
 * is written once at start, and what runs is asked of the supervisor itself.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { invalidOption } from '../errors.ts';

export function appsHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NODESCALE_HOME) return path.resolve(env.NODESCALE_HOME);
  const state = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'nodescale');
}

/** App names are file names: letters, digits, '.', '_' and '-' (as run's --name). */
export function checkAppName(name: string): string {
  if (!/^[\w][\w.-]*$/.test(name) || name.length > 64)
    throw invalidOption('--name', 'up to 64 letters, digits, ".", "_" or "-"', name);
  return name;
}

export const appDir = (name: string, env?: NodeJS.ProcessEnv) => path.join(appsHome(env), 'apps', checkAppName(name));
export const appLogFile = (name: string, env?: NodeJS.ProcessEnv) => path.join(appDir(name, env), 'logs', 'app.log');

/** What start.json holds. */
export interface StartRecord {
  name: string;
  /** The supervisor's pid. */
  pid: number;
  /** `nodescale run`'s arguments, as `restart` gives them again (the app's path absolute). */
  runArgs: string[];
  cwd: string;
  startedAt: string;
  logFile: string;
  /** The config file it came from, if any. */
  config: string | null;
}

export function writeStartRecord(record: StartRecord, env?: NodeJS.ProcessEnv): void {
  const dir = appDir(record.name, env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Written whole, then renamed: a reader never sees half of it.
  const file = path.join(dir, 'start.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The app's start.json, or null when there is none or it is not one of ours (checked field by field). */
export function readStartRecord(name: string, env?: NodeJS.ProcessEnv): StartRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path.join(appDir(name, env), 'start.json'), 'utf8'));
  } catch {
    return null;
  }
  const r = value as Partial<StartRecord> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    r.name !== name ||
    !Number.isSafeInteger(r.pid) ||
    !Array.isArray(r.runArgs) ||
    !r.runArgs.every((a) => typeof a === 'string') ||
    typeof r.cwd !== 'string' ||
    typeof r.startedAt !== 'string' ||
    typeof r.logFile !== 'string' ||
    (r.config !== null && typeof r.config !== 'string')
  )
    return null;
  return r as StartRecord;
}

/** The names of the apps with a directory here. */
export function appNames(env?: NodeJS.ProcessEnv): string[] {
  try {
    return readdirSync(path.join(appsHome(env), 'apps'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && /^[\w][\w.-]*$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}
