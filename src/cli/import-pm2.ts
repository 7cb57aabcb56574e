/**
 * `nodescale import-pm2 [ecosystem.config.js] [--out FILE]`: pm2's ecosystem file as nodescale.config.json
 * (src/apps/import-pm2.ts), and every key it could not carry over, with what to do instead.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { importPm2, loadEcosystem } from '../apps/import-pm2.ts';
import { NodescaleError } from '../errors.ts';
import { boolFlag, COMMON_FLAGS, parseCommandLine, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = { out: { type: 'string' }, force: { type: 'boolean' }, ...COMMON_FLAGS } as const;

export const importPm2Help = `Usage: nodescale import-pm2 [ecosystem.config.js] [--out nodescale.config.json] [--force]

pm2's ecosystem file (default ./ecosystem.config.js, .cjs, .mjs or .json) as nodescale.config.json: name,
script, args, instances, cwd, env and env_<name>, node_args, max_memory_restart, kill_timeout, listen_timeout,
wait_ready and max_restarts are carried over; every other key is listed on stderr with what to do instead.
The result is checked as nodescale start checks it. Without --out it is printed.

Options:
      --out FILE   write it there (refused if FILE exists, unless --force)
      --force      overwrite --out
  -h, --help       this help`;

async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine('import-pm2', argv, FLAGS, 1);
  const file =
    positionals[0] ??
    ['ecosystem.config.js', 'ecosystem.config.cjs', 'ecosystem.config.mjs', 'ecosystem.config.json'].find((name) =>
      existsSync(name),
    ) ??
    'ecosystem.config.js';
  const { config, left } = importPm2(await loadEcosystem(file), file);
  const text = `${JSON.stringify(config, null, 2)}\n`;
  const out = textFlag(values, 'out');
  if (out === undefined) io.stdout.write(text);
  else {
    if (existsSync(out) && !boolFlag(values, 'force'))
      throw new NodescaleError('NS_ERR_USAGE', `${out} exists: give --force to overwrite it`);
    writeFileSync(out, text);
    io.stderr.write(`import-pm2: wrote ${out} (${config.apps.length} app(s))\n`);
  }
  for (const { app, key, why } of left) io.stderr.write(`import-pm2: not carried over: ${app}: ${key}: ${why}\n`);
  return 0;
}

export const importPm2Command: Command = { name: 'import-pm2', help: importPm2Help, run };
