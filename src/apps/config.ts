/**
 * `nodescale.config.json` (or .js, .mjs, .ts exporting the same object as default): the apps of a repository, each
 * started with `nodescale start` as `nodescale run` would be. Checked whole before anything starts: an unknown key is
 * refused with the nearest known one, a value of the wrong kind with what it must be (NS_ERR_CONFIG, naming the key
 * as `apps[1].workers`). Per-environment blocks follow pm2's convention: `env_production` is merged over `env` with
 * `--env production`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NodescaleError } from '../errors.ts';
import { nearestName } from '../unknown-options.ts';
import { parseDuration, parseSize } from '../units.ts';
import { checkAppName } from './home.ts';

export const CONFIG_NAMES = [
  'nodescale.config.json',
  'nodescale.config.js',
  'nodescale.config.mjs',
  'nodescale.config.ts',
];

/** One app, as the file gives it (after checking). */
export interface AppConfig {
  name: string;
  script: string;
  args: string[];
  workers?: number | 'auto';
  env: Record<string, string>;
  /** env_<environment> blocks, by environment. */
  environments: Record<string, Record<string, string>>;
  cwd?: string;
  nodeArgs: string[];
  maxMemory?: number;
  readyOn?: string;
  readyTimeout?: number;
  grace?: number;
  stability?: number;
  probation?: number;
  rollback?: 'parked' | 'none';
  maxRestarts?: number;
  metrics?: string;
  console?: boolean;
  logs: { maxSize?: number; keep?: number };
}

export interface Config {
  file: string;
  apps: AppConfig[];
}

const APP_KEYS = [
  'name',
  'script',
  'args',
  'workers',
  'env',
  'cwd',
  'nodeArgs',
  'maxMemory',
  'readyOn',
  'readyTimeout',
  'grace',
  'stability',
  'probation',
  'rollback',
  'maxRestarts',
  'metrics',
  'console',
  'logs',
] as const;

const fail = (file: string, key: string, message: string) =>
  new NodescaleError('NS_ERR_CONFIG', `${path.basename(file)}: ${key}: ${message}`);

/** The config file in `dir`, if there is one (the first of CONFIG_NAMES). */
export function findConfig(dir: string): string | null {
  for (const name of CONFIG_NAMES) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  return null;
}

export const isConfigFile = (file: string) => /(^|[/\\])nodescale\.config\.(json|js|mjs|ts)$/.test(file);

export async function loadConfig(file: string): Promise<Config> {
  const absolute = path.resolve(file);
  let value: unknown;
  try {
    if (absolute.endsWith('.json')) value = JSON.parse(readFileSync(absolute, 'utf8'));
    else value = ((await import(pathToFileURL(absolute).href)) as { default?: unknown }).default;
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_CONFIG',
      `${path.basename(absolute)}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      { cause: error },
    );
  }
  return { file: absolute, apps: checkConfig(absolute, value) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(file: string, key: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw fail(file, key, `must be a list of strings, got ${JSON.stringify(value)}`);
  return value;
}

function envBlock(file: string, key: string, value: unknown): Record<string, string> {
  if (!isObject(value)) throw fail(file, key, 'must be an object of variables');
  const env: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw fail(file, `${key}.${name}`, 'is not a variable name');
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      throw fail(file, `${key}.${name}`, 'must be a string, a number or a boolean');
    env[name] = String(v);
  }
  return env;
}

/** A value the CLI's parsers read (a duration, a size), with the key named in the error. */
function parsed<T>(file: string, key: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw fail(file, key, (error as Error).message.replace(/^[^:]*: /, ''));
  }
}

export function checkConfig(file: string, value: unknown): AppConfig[] {
  if (!isObject(value)) throw fail(file, '(top)', 'must be an object with "apps"');
  for (const key of Object.keys(value))
    if (key !== 'apps')
      throw fail(
        file,
        key,
        `unknown key${key.toLowerCase().startsWith('app') ? '; did you mean apps?' : '; the file has "apps" only'}`,
      );
  if (!Array.isArray(value.apps) || value.apps.length === 0)
    throw fail(file, 'apps', 'must be a list of at least one app');
  const names = new Set<string>();
  return value.apps.map((raw: unknown, i: number) => {
    const at = (key: string) => `apps[${i}].${key}`;
    if (!isObject(raw)) throw fail(file, `apps[${i}]`, 'must be an object');
    for (const key of Object.keys(raw)) {
      if ((APP_KEYS as readonly string[]).includes(key) || /^env_[\w-]+$/.test(key)) continue;
      const nearest = nearestName(key, APP_KEYS);
      throw fail(
        file,
        at(key),
        `unknown key${nearest === null ? `; the keys are ${APP_KEYS.join(', ')}` : `; did you mean ${nearest}?`}`,
      );
    }
    if (typeof raw.script !== 'string' || raw.script === '') throw fail(file, at('script'), 'must be the app file');
    const name = typeof raw.name === 'string' ? raw.name : path.basename(raw.script).replace(/\.[^.]+$/, '');
    parsed(file, at('name'), () => checkAppName(name));
    if (names.has(name)) throw fail(file, at('name'), `"${name}" is the name of another app in the file`);
    names.add(name);
    const app: AppConfig = {
      name,
      script: raw.script,
      args: raw.args === undefined ? [] : strings(file, at('args'), raw.args),
      env: raw.env === undefined ? {} : envBlock(file, at('env'), raw.env),
      environments: {},
      nodeArgs: raw.nodeArgs === undefined ? [] : strings(file, at('nodeArgs'), raw.nodeArgs),
      logs: {},
    };
    for (const key of Object.keys(raw))
      if (key.startsWith('env_')) app.environments[key.slice(4)] = envBlock(file, at(key), raw[key]);
    if (raw.workers !== undefined) {
      if (raw.workers !== 'auto' && !(Number.isInteger(raw.workers) && (raw.workers as number) >= 1))
        throw fail(file, at('workers'), `must be a whole number ≥ 1 or "auto", got ${JSON.stringify(raw.workers)}`);
      app.workers = raw.workers as number | 'auto';
    }
    if (raw.cwd !== undefined) {
      if (typeof raw.cwd !== 'string') throw fail(file, at('cwd'), 'must be a directory');
      app.cwd = raw.cwd;
    }
    const durations = ['readyTimeout', 'grace', 'stability', 'probation'] as const;
    for (const key of durations) {
      const v = raw[key];
      if (v === undefined) continue;
      // A number is milliseconds, as in pm2's files (kill_timeout: 1600).
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) app[key] = v;
      else if (typeof v === 'string') app[key] = parsed(file, at(key), () => parseDuration(key, v));
      else throw fail(file, at(key), `must be a duration ("30s") or milliseconds, got ${JSON.stringify(v)}`);
    }
    if (raw.maxMemory !== undefined) {
      const v = raw.maxMemory;
      if (typeof v !== 'string' && typeof v !== 'number')
        throw fail(file, at('maxMemory'), 'must be a size ("512mb") or bytes');
      app.maxMemory = parsed(file, at('maxMemory'), () => parseSize('maxMemory', v));
    }
    if (raw.readyOn !== undefined) {
      if (!['auto', 'message', 'listening'].includes(raw.readyOn as string))
        throw fail(file, at('readyOn'), `must be auto, message or listening, got ${JSON.stringify(raw.readyOn)}`);
      app.readyOn = raw.readyOn as string;
    }
    if (raw.rollback !== undefined) {
      if (raw.rollback !== 'parked' && raw.rollback !== 'none')
        throw fail(file, at('rollback'), `must be parked or none, got ${JSON.stringify(raw.rollback)}`);
      app.rollback = raw.rollback;
    }
    if (raw.maxRestarts !== undefined) {
      if (!(Number.isInteger(raw.maxRestarts) && (raw.maxRestarts as number) >= 0))
        throw fail(file, at('maxRestarts'), 'must be a whole number ≥ 0');
      app.maxRestarts = raw.maxRestarts as number;
    }
    if (raw.metrics !== undefined) {
      if (typeof raw.metrics !== 'string' && typeof raw.metrics !== 'number')
        throw fail(file, at('metrics'), 'must be [HOST:]PORT');
      app.metrics = String(raw.metrics);
    }
    if (raw.console !== undefined) {
      if (typeof raw.console !== 'boolean') throw fail(file, at('console'), 'must be true or false');
      app.console = raw.console;
    }
    if (raw.logs !== undefined) {
      if (!isObject(raw.logs)) throw fail(file, at('logs'), 'must be { "maxSize": …, "keep": … }');
      for (const key of Object.keys(raw.logs)) {
        if (key === 'maxSize' || key === 'keep') continue;
        const nearest = nearestName(key, ['maxSize', 'keep']);
        throw fail(
          file,
          at(`logs.${key}`),
          `unknown key${nearest === null ? '; the keys are maxSize, keep' : `; did you mean ${nearest}?`}`,
        );
      }
      const { maxSize, keep } = raw.logs;
      if (maxSize !== undefined) {
        if (typeof maxSize !== 'string' && typeof maxSize !== 'number')
          throw fail(file, at('logs.maxSize'), 'must be a size');
        app.logs.maxSize = parsed(file, at('logs.maxSize'), () => parseSize('maxSize', maxSize));
      }
      if (keep !== undefined) {
        if (!(Number.isInteger(keep) && (keep as number) >= 0))
          throw fail(file, at('logs.keep'), 'must be a whole number ≥ 0');
        app.logs.keep = keep as number;
      }
    }
    return app;
  });
}

/** The app's directory: its cwd, relative to the config file's directory. */
export const appCwd = (config: Config, app: AppConfig) => path.resolve(path.dirname(config.file), app.cwd ?? '.');

/** `nodescale run`'s arguments for an app of the file (its script made absolute against its cwd). */
export function runArgsOf(config: Config, app: AppConfig): string[] {
  const cwd = appCwd(config, app);
  const flag = (name: string, value: string | number | undefined) =>
    value === undefined ? [] : [`--${name}`, String(value)];
  const ms = (value: number | undefined) => (value === undefined ? undefined : `${value}ms`);
  return [
    path.resolve(cwd, app.script),
    ...flag('name', app.name),
    ...flag('workers', app.workers),
    ...app.nodeArgs.map((arg) => `--node-arg=${arg}`),
    ...flag('max-memory', app.maxMemory),
    ...flag('ready-on', app.readyOn),
    ...flag('ready-timeout', ms(app.readyTimeout)),
    ...flag('grace', ms(app.grace)),
    ...flag('stability', ms(app.stability)),
    ...flag('probation', ms(app.probation)),
    ...flag('rollback', app.rollback),
    ...flag('max-restarts', app.maxRestarts),
    ...flag('metrics', app.metrics),
    ...(app.console === true ? ['--console'] : []),
    ...flag('log-max-size', app.logs.maxSize),
    ...flag('log-keep', app.logs.keep),
    ...(app.args.length > 0 ? ['--', ...app.args] : []),
  ];
}

/** The environment an app gets: env, then env_<environment> over it. An environment no app names is an error. */
export function appEnv(app: AppConfig, environment: string | undefined): Record<string, string> {
  if (environment === undefined) return { ...app.env };
  return { ...app.env, ...(app.environments[environment] ?? {}) };
}
