/**
 * `nodescale startup`: the apps of the config file (or one started with `nodescale start`) started at boot by
 * systemd, one unit each (src/deploy/systemd.ts, as `nodescale deploy systemd` writes it), then enabled. Boot is
 * systemd's job: nodescale keeps no list of apps to resurrect (pm2's `save` and `resurrect`, whose dumps are lost:
 * Unitech/pm2#2653, #1035). Each app's environment goes to a 0600 file in its private directory, never into the
 * unit (units are world-readable).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appDir, checkAppName, readStartRecord } from '../apps/home.ts';
import { findConfig, loadConfig } from '../apps/config.ts';
import { renderSystemdUnit } from '../deploy/systemd.ts';
import { NodescaleError } from '../errors.ts';
import { SUPERVISOR_DEFAULTS } from '../supervisor/options.ts';
import { boolFlag, COMMON_FLAGS, parseCommandLine, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';
import { configSpecs, type StartSpec } from './start.ts';
import { parseRunArgs } from './supervise.ts';

const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));

const FLAGS = {
  env: { type: 'string' },
  only: { type: 'string' },
  dir: { type: 'string' },
  user: { type: 'string' },
  'no-enable': { type: 'boolean' },
  ...COMMON_FLAGS,
} as const;

export const startupHelp = `Usage: nodescale startup [NAME] [--env NAME] [--only APP] [--dir DIR] [--user U] [--no-enable]

Starts the apps at boot through systemd: a unit per app of ./nodescale.config.json (or the app NAME started with
nodescale start), written as nodescale deploy systemd writes it (Type=notify, watchdog, reload, hardening), with the
app's environment in a 0600 file of its own, then systemctl daemon-reload and enable. Nothing to save: what starts
at boot is the units.

Options:
      --env NAME    the config file's env_NAME blocks
      --only APP    one app of the config file
      --dir DIR     where the units go (default /etc/systemd/system as root, ~/.config/systemd/user otherwise)
      --user U      the user the apps run as (User=)
      --no-enable   write the units only
  -h, --help        this help`;

const unitName = (app: string) => `nodescale-${app}.service`;

/** The unit and environment file of one app, written; returns the unit's path. */
export function writeUnit(spec: StartSpec, dir: string, user: string | undefined): string {
  const parsed = parseRunArgs(spec.runArgs.map((arg, i) => (i === 0 ? path.resolve(spec.cwd, arg) : arg)));
  const envFile = path.join(appDir(spec.name), 'unit.env');
  mkdirSync(path.dirname(envFile), { recursive: true, mode: 0o700 });
  // systemd's EnvironmentFile syntax: KEY="value", with \ and " escaped.
  writeFileSync(
    envFile,
    Object.entries(spec.env)
      .map(([key, value]) => `${key}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"\n`)
      .join(''),
    { mode: 0o600 },
  );
  const unit = renderSystemdUnit({
    name: spec.name,
    node: process.execPath,
    bin: BIN,
    runArgs: spec.runArgs,
    workingDirectory: spec.cwd,
    graceMs: parsed.supervisor.graceMs ?? SUPERVISOR_DEFAULTS.graceMs,
    limitNofile: 65_536,
    watchdogSec: 30,
    environmentFile: envFile,
    ...(user === undefined ? {} : { user }),
  });
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, unitName(spec.name));
  writeFileSync(file, unit);
  return file;
}

async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine('startup', argv, FLAGS, 1);
  const root = process.getuid?.() === 0;
  const dir =
    textFlag(values, 'dir') ?? (root ? '/etc/systemd/system' : path.join(os.homedir(), '.config', 'systemd', 'user'));
  let specs: StartSpec[];
  const name = positionals[0];
  if (name !== undefined) {
    const record = readStartRecord(checkAppName(name));
    if (record === null)
      throw new NodescaleError('NS_ERR_APP_UNKNOWN', `no app ${name} was started with nodescale start (nodescale ls)`);
    specs =
      record.config !== null
        ? configSpecs(await loadConfig(record.config), textFlag(values, 'env'), name)
        : [{ name, runArgs: record.runArgs, cwd: record.cwd, env: {}, config: null }];
  } else {
    const file = findConfig(process.cwd());
    if (file === null)
      throw new NodescaleError('NS_ERR_USAGE', "give the app's NAME, or run it where nodescale.config.json is");
    specs = configSpecs(await loadConfig(file), textFlag(values, 'env'), textFlag(values, 'only'));
  }
  const units = specs.map((spec) => writeUnit(spec, dir, textFlag(values, 'user')));
  for (const unit of units) io.stderr.write(`startup: wrote ${unit}\n`);
  if (boolFlag(values, 'no-enable')) return 0;
  const systemctl = (args: string[]) => {
    const ran = spawnSync('systemctl', [...(root ? [] : ['--user']), ...args], { encoding: 'utf8' });
    if (ran.status !== 0)
      throw new NodescaleError(
        'NS_ERR_STARTUP',
        `systemctl ${args.join(' ')} failed: ${(ran.error?.message ?? ran.stderr).trim()}; the units are written: enable them where systemd runs (systemctl daemon-reload && systemctl enable ${units.map((u) => path.basename(u)).join(' ')})`,
      );
  };
  systemctl(['daemon-reload']);
  systemctl(['enable', ...units.map((u) => path.basename(u))]);
  io.stdout.write(
    `enabled at boot: ${specs.map((s) => unitName(s.name)).join(', ')}. To move a running app under systemd now: nodescale stop NAME && systemctl start nodescale-NAME\n`,
  );
  return 0;
}

export const startupCommand: Command = { name: 'startup', help: startupHelp, run };
