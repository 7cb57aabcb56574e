/**
 * `nodescale import-pm2`: a pm2 ecosystem file as nodescale.config.json — the keys with a meaning here carried over,
 * the rest listed with what to do instead — and the result loads as `nodescale start` loads it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/apps/config.ts';
import { runCli } from '../helpers/cli.ts';

const ECOSYSTEM = new URL('../fixtures/pm2/ecosystem.config.cjs', import.meta.url).pathname;

test('import-pm2 carries the common keys over, lists every other one, and writes a file nodescale start loads', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-pm2-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'nodescale.config.json');
  const ran = await runCli(['import-pm2', ECOSYSTEM, '--out', out]);
  assert.equal(ran.code, 0, ran.stderr);
  const written = JSON.parse(readFileSync(out, 'utf8')) as { apps: Record<string, unknown>[] };
  assert.deepEqual(written.apps[0], {
    name: 'api',
    script: './server.js',
    args: ['--port', '3000', '--title', 'my api'],
    workers: 'auto',
    env: { NODE_ENV: 'development', PORT: 3000 },
    env_production: { NODE_ENV: 'production' },
    maxMemory: '300mb',
    grace: 1600,
    readyTimeout: 8000,
    readyOn: 'message',
    maxRestarts: 10,
    nodeArgs: ['--max-old-space-size=512'],
  });
  assert.deepEqual(written.apps[1], { name: 'worker', script: 'worker.js', workers: 'auto' });
  for (const key of ['watch', 'ignore_watch', 'out_file', 'error_file', 'merge_logs', 'cron_restart'])
    assert.match(ran.stderr, new RegExp(`not carried over: api: ${key}: `), key);
  assert.match(ran.stderr, /not carried over: worker: instances: -1 \(CPUs less one\) became "auto"/);
  assert.match(ran.stderr, /not carried over: worker: exec_mode: fork/);
  assert.match(ran.stderr, /not carried over: worker: autorestart: /);
  assert.match(ran.stderr, /not carried over: \(file\): deploy: /);
  // It loads as nodescale start loads it; the env values keep their meaning.
  const config = await loadConfig(out);
  assert.equal(config.apps[0]!.maxMemory, 300 * 1024 * 1024);
  assert.equal(config.apps[0]!.env.PORT, '3000');
  assert.deepEqual(config.apps[0]!.environments.production, { NODE_ENV: 'production' });
  // Not over an existing file without --force; printed without --out.
  assert.equal((await runCli(['import-pm2', ECOSYSTEM, '--out', out])).code, 2);
  assert.equal((await runCli(['import-pm2', ECOSYSTEM, '--out', out, '--force'])).code, 0);
  assert.deepEqual(JSON.parse((await runCli(['import-pm2', ECOSYSTEM])).stdout), written);
  // A file that is not pm2's, or is missing.
  const empty = path.join(dir, 'empty.json');
  writeFileSync(empty, '{}');
  const none = await runCli(['import-pm2', empty]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /NS_ERR_CONFIG: empty\.json: no apps/);
  assert.match(
    (await runCli(['import-pm2', path.join(dir, 'nope.cjs')])).stderr,
    /NS_ERR_CONFIG: nope\.cjs: no such file/,
  );
});

test('the config file may be .mjs or .ts exporting the same object; its errors name the key', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mjs = path.join(dir, 'nodescale.config.mjs');
  writeFileSync(mjs, "export default { apps: [{ name: 'api', script: 'server.js', workers: 2, grace: 1500 }] };\n");
  const ts = path.join(dir, 'nodescale.config.ts');
  writeFileSync(ts, "const workers: number = 3;\nexport default { apps: [{ script: 'web.js', workers }] };\n");
  const fromMjs = await loadConfig(mjs);
  assert.deepEqual([fromMjs.apps[0]!.name, fromMjs.apps[0]!.workers, fromMjs.apps[0]!.grace], ['api', 2, 1500]);
  const fromTs = await loadConfig(ts);
  assert.deepEqual([fromTs.apps[0]!.name, fromTs.apps[0]!.workers], ['web', 3]);
  // (Another file: a module once imported is cached.)
  const bad = path.join(dir, 'bad', 'nodescale.config.mjs');
  mkdirSync(path.dirname(bad));
  writeFileSync(bad, "export default { apps: [{ script: 'a.js', env: { 'BAD-NAME': 1 } }] };\n");
  await assert.rejects(loadConfig(bad), /apps\[0\]\.env\.BAD-NAME: is not a variable name/);
});
