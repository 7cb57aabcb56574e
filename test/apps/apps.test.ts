/**
 * What pm2 users do every day, without a daemon: `start` in the background, `ls`, `logs`, `reload`, `stop`, from
 * one config file for two apps; the supervisor's log file rotated under a chatty app with no line lost; a killed
 * supervisor listed as dead and a frozen one as not answering, never as running; bad input refused before anything
 * starts. Each test has an app home of its own (NODESCALE_HOME) and stops what it started, pass or fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { followLog, lastRecords, type LogRecord } from '../../src/apps/log-reader.ts';
import { LogFile } from '../../src/supervisor/log-file.ts';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { runBin } from '../helpers/cli.ts';
import { PLAIN_APP, startRun, SUPERVISED_APP } from '../helpers/supervisor.ts';
import { waitUntil } from '../helpers/wait.ts';

const CHATTY_APP = new URL('../fixtures/chatty-app.ts', import.meta.url).pathname;
let names = 0;
const uniqueName = (what: string) => `${what}${process.pid}x${++names}`;

interface Row {
  name: string;
  state: string;
  pid: number | null;
  workers: { ready: number; total: number } | null;
  listening: string[];
  log: string | null;
}

/**
 * A private app home; every app started in it is stopped (SIGKILL at worst) and everything removed after. `ls` lists
 * every supervisor of this user, those of other tests running beside this one too: `ls()` keeps this home's (those
 * whose log is under it), and only those are ever killed.
 */
function home(t: TestContext) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-home-'));
  const env = { NODESCALE_HOME: dir };
  const cli = (argv: string[], cwd?: string) => runBin(argv, env, cwd);
  const all = async () => JSON.parse((await cli(['ls', '--json'])).stdout || '[]') as Row[];
  const ls = async () => (await all()).filter((row) => row.log?.startsWith(dir + path.sep) === true);
  t.after(async () => {
    const rows = await ls();
    for (const row of rows.filter((r) => r.state !== 'stopped' && r.state !== 'dead' && r.pid !== null)) {
      try {
        process.kill(row.pid!, 'SIGCONT');
        process.kill(-row.pid!, 'SIGKILL'); // its session's process group: the supervisor and its workers
      } catch {
        // gone
      }
    }
    for (const row of rows)
      for (const file of [defaultControlPath(row.name), `${defaultControlPath(row.name)}.pid`])
        rmSync(file, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, env, cli, ls, all };
}

test('two apps from one config file: start → ls shows them ready → logs has their output → reload → stop', async (t) => {
  const h = home(t);
  const [api, web] = [uniqueName('api'), uniqueName('web')];
  const project = mkdtempSync(path.join(tmpdir(), 'ns-project-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(
    path.join(project, 'nodescale.config.json'),
    JSON.stringify({
      apps: [
        {
          name: api,
          script: PLAIN_APP,
          workers: 2,
          probation: '500ms',
          env: { GREETING: 'dev' },
          env_production: { GREETING: 'prod' },
        },
        { name: web, script: SUPERVISED_APP, workers: 1, env: { APP_MODE: 'ok' }, probation: '500ms' },
      ],
    }),
  );
  const started = await h.cli(['start', '--env', 'production'], project);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, new RegExp(`started ${api} \\(supervisor pid \\d+\\): 2 worker\\(s\\) ready`));
  assert.match(started.stdout, new RegExp(`started ${web} \\(supervisor pid \\d+\\): 1 worker\\(s\\) ready`));
  const rows = await h.ls();
  const row = (name: string) => rows.find((r) => r.name === name)!;
  assert.equal(row(api).state, 'online');
  assert.deepEqual(row(api).workers, { ready: 2, total: 2 });
  assert.deepEqual(row(web).workers, { ready: 1, total: 1 });
  assert.match(row(api).listening[0]!, /^127\.0\.0\.1:\d+$/);
  assert.equal(row(api).log, path.join(h.dir, 'apps', api, 'logs', 'app.log'));

  // Its output, from the file: each line with its worker.
  const bodies: string[] = [];
  for (let i = 0; i < 4; i++)
    bodies.push(await fetch(`http://${row(api).listening[0]}/seen-${i}`).then((r) => r.text()));
  assert.ok(
    bodies.every((body) => body.endsWith(' prod')),
    `env_production over env: ${bodies.join(', ')}`,
  );
  await waitUntil(
    async () => (await h.cli(['logs', api, '-n', '50'])).stdout.includes('served /seen-3'),
    'the requests are in the log',
  );
  const logs = (await h.cli(['logs', api, '-n', '50'])).stdout;
  assert.match(logs, /\[w[01] \d+\] served \/seen-0/);
  assert.match(logs, /\[supervisor\] 2 worker\(s\) ready/);
  const one = (await h.cli(['logs', api, '--worker', '1', '-n', '50', '--json'])).stdout.trim().split('\n');
  assert.ok(
    one.every((line) => (JSON.parse(line) as LogRecord).worker === 1),
    'only worker 1',
  );

  // With no name, reload and stop act on every app of the file, in order.
  const reloaded = await h.cli(['reload'], project);
  assert.equal(reloaded.code, 0, reloaded.stderr);
  assert.match(reloaded.stdout, new RegExp(`${api}: reloaded: 2 worker\\(s\\) replaced`));
  assert.match(reloaded.stdout, new RegExp(`${web}: reloaded: 1 worker\\(s\\) replaced`));
  const stopped = await h.cli(['stop'], project);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(
    (await h.ls()).map((r) => [r.name, r.state]),
    [
      [api, 'stopped'],
      [web, 'stopped'],
    ],
  );
  // The log stays after the stop; --prune removes what stopped apps left.
  assert.match((await h.cli(['logs', api])).stdout, /\[supervisor\] stopped/);
  await h.cli(['ls', '--prune']);
  assert.deepEqual(await h.ls(), []);
});

test('the log file under a chatty app: rotated at its size, at most --log-keep files kept, no line lost', async (t) => {
  const h = home(t);
  const name = uniqueName('chatty');
  const LINES = 8000; // records of about 150 bytes: 1.2 MB, 4 rotations of 256 KiB, all of it within 1 + 5 files
  const started = await runBin(
    ['start', CHATTY_APP, '--name', name, '-w', '1', '--log-max-size', '256kb', '--log-keep', '5'],
    { ...h.env, CHATTY_LINES: String(LINES) },
  );
  assert.equal(started.code, 0, started.stderr);
  const logDir = path.join(h.dir, 'apps', name, 'logs');
  await waitUntil(
    () => readFileSync(path.join(logDir, 'app.log'), 'utf8').includes(`chatty 0 ${LINES - 1} `),
    'the last line is written',
  );
  const files = readdirSync(logDir).sort();
  t.diagnostic(`files: ${files.join(' ')}`);
  assert.ok(files.length >= 3, `it rotated: ${files.join(' ')}`);
  assert.ok(files.length <= 6, `at most app.log and 5 rotated: ${files.join(' ')}`);
  for (const file of files) assert.ok(statSync(path.join(logDir, file)).size <= 256 * 1024, `${file} within its size`);
  const seen = lastRecords(path.join(logDir, 'app.log'), 1e6)
    .map((r) => (typeof r.message === 'string' ? /^chatty 0 (\d+) /.exec(r.message) : null))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]));
  assert.equal(seen.length, LINES, 'every line is there once');
  assert.ok(
    seen.every((n, i) => n === i),
    'in order',
  );
  assert.equal((await h.cli(['stop', name])).code, 0);
});

test('the log file keeps no more than it is allowed; logs --follow goes on through a rotation', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'app.log');
  const log = new LogFile(file, { maxBytes: 4096, keep: 2 });
  const followed: number[] = [];
  const stop = followLog(file, {}, (r) => followed.push((r as { n: number }).n), 20);
  for (let n = 0; n < 400; n++) {
    log.write({ time: new Date().toISOString(), n, message: 'y'.repeat(40) });
    // A rotation every ~50 records; the follower polls every 20 ms.
    if (n % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 15));
  }
  log.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  stop();
  const files = readdirSync(dir).sort();
  assert.deepEqual(files, ['app.log', 'app.log.1', 'app.log.2'], 'the current file and 2 rotated, no more');
  assert.ok(files.every((f) => statSync(path.join(dir, f)).size <= 4096));
  assert.deepEqual(
    followed,
    Array.from({ length: 400 }, (_, n) => n),
    'the follower saw every record once, in order, across 7 rotations',
  );
});

test('a killed supervisor is listed as dead, a frozen one as not answering; never as running', async (t) => {
  const h = home(t);
  const [killed, frozen] = [uniqueName('killed'), uniqueName('frozen')];
  for (const name of [killed, frozen])
    assert.equal((await h.cli(['start', PLAIN_APP, '--name', name, '-w', '1'])).code, 0);
  const pids = Object.fromEntries((await h.ls()).map((r) => [r.name, r.pid!]));
  process.kill(-pids[killed]!, 'SIGKILL');
  process.kill(pids[frozen]!, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(pids[frozen]!, 'SIGCONT');
    } catch {
      // gone
    }
  });
  await waitUntil(async () => {
    const rows = await h.ls();
    return rows.find((r) => r.name === killed)?.state === 'dead';
  }, 'the killed one is dead');
  const rows = await h.ls();
  assert.equal(rows.find((r) => r.name === frozen)?.state, 'not answering');
  assert.match((await h.cli(['ls'])).stdout, new RegExp(`${killed} +dead`));
  // Pruned: the dead one's socket and directory; the frozen one is left alone, and answers again once thawed.
  const pruned = await h.cli(['ls', '--prune']);
  assert.match(pruned.stderr, new RegExp(`removed ${killed} \\(dead\\)`));
  process.kill(pids[frozen]!, 'SIGCONT');
  await waitUntil(async () => (await h.ls()).find((r) => r.name === frozen)?.state === 'online', 'thawed');
  assert.deepEqual(
    (await h.ls()).map((r) => r.name),
    [frozen],
  );
  assert.equal((await h.cli(['stop', frozen])).code, 0);

  // A nodescale run in a terminal (no start.json): frozen, it is not answering too, told by the pid beside its socket.
  const foreground = startRun(t, ['-w', '1'], {}, PLAIN_APP);
  await foreground.waitFor(/1 worker\(s\) ready/);
  const row = async () => (await h.all()).find((r) => r.name === foreground.name);
  assert.equal((await row())?.state, 'online');
  assert.equal((await row())?.log, null);
  foreground.kill('SIGSTOP');
  try {
    assert.equal((await row())?.state, 'not answering');
  } finally {
    foreground.kill('SIGCONT');
  }
  foreground.kill('SIGTERM');
  await foreground.exited;
  assert.equal((await row()) ?? null, null, 'stopped cleanly, a foreground run leaves nothing to list');
});

test('start refuses bad input before anything runs; a crashing app or one already running exits 1 with why', async (t) => {
  const h = home(t);
  const bad = await h.cli(['start', PLAIN_APP, '--workers', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /NS_ERR_INVALID_OPTION/);
  assert.deepEqual(await h.ls(), [], 'nothing started');
  const project = mkdtempSync(path.join(tmpdir(), 'ns-project-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(
    path.join(project, 'nodescale.config.json'),
    JSON.stringify({ apps: [{ script: PLAIN_APP, wrokers: 2 }] }),
  );
  const typo = await h.cli(['start'], project);
  assert.equal(typo.code, 2);
  assert.match(
    typo.stderr,
    /^error NS_ERR_CONFIG: nodescale\.config\.json: apps\[0\]\.wrokers: unknown key; did you mean workers\?\n$/,
  );
  writeFileSync(
    path.join(project, 'nodescale.config.json'),
    JSON.stringify({ apps: [{ script: PLAIN_APP, grace: 'soon' }] }),
  );
  assert.match((await h.cli(['start'], project)).stderr, /apps\[0\]\.grace: .*duration/);
  const none = await h.cli(['start'], path.dirname(project));
  assert.equal(none.code, 2);

  const name = uniqueName('crashing');
  const crashing = await runBin(['start', SUPERVISED_APP, '--name', name, '-w', '1', '--max-restarts', '1'], {
    ...h.env,
    APP_MODE: 'crash',
  });
  assert.equal(crashing.code, 1);
  assert.match(crashing.stderr, /NS_ERR_START_FAILED: .*supervisor exited .*crashing at start/);

  const twice = uniqueName('twice');
  assert.equal((await h.cli(['start', PLAIN_APP, '--name', twice, '-w', '1'])).code, 0);
  const again = await h.cli(['start', PLAIN_APP, '--name', twice]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /NS_ERR_APP_RUNNING: .* already runs/);
  const restarted = await h.cli(['restart', twice]);
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.match(restarted.stdout, /restarted .*1 worker\(s\) ready/);
  assert.equal((await h.cli(['stop', twice])).code, 0);
  assert.equal((await h.cli(['logs', 'never-started'])).code, 1);
  assert.equal((await h.cli(['restart', 'never-started'])).code, 1);
});

test('startup: a unit per app of the config file, systemd-analyze verify accepts each; the environment in a 0600 file, not the unit', async (t) => {
  const h = home(t);
  const project = mkdtempSync(path.join(tmpdir(), 'ns-project-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(
    path.join(project, 'nodescale.config.json'),
    JSON.stringify({
      apps: [
        {
          name: 'api',
          script: PLAIN_APP,
          workers: 2,
          env: { API_TOKEN: 's3cr"et' },
          env_production: { NODE_ENV: 'production' },
        },
        { name: 'web', script: SUPERVISED_APP, grace: '20s' },
      ],
    }),
  );
  const units = path.join(project, 'units');
  const ran = await h.cli(['startup', '--env', 'production', '--dir', units, '--no-enable'], project);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(readdirSync(units).sort(), ['nodescale-api.service', 'nodescale-web.service']);
  for (const file of readdirSync(units)) {
    const verify = spawnSync('systemd-analyze', ['verify', path.join(units, file)], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  }
  const unit = readFileSync(path.join(units, 'nodescale-api.service'), 'utf8');
  const envFile = path.join(h.dir, 'apps', 'api', 'unit.env');
  assert.match(unit, /^ExecStart=\S+ \S+nodescale\.js run \S+plain-app\.ts --name api --workers 2$/m);
  assert.match(unit, new RegExp(`^EnvironmentFile=${envFile}$`, 'm'));
  assert.match(unit, new RegExp(`^WorkingDirectory=${project}$`, 'm'));
  assert.doesNotMatch(unit, /s3cr/, 'no secret in the unit, which anyone may read');
  assert.equal(statSync(envFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(envFile, 'utf8'), 'API_TOKEN="s3cr\\"et"\nNODE_ENV="production"\n');
  assert.match(readFileSync(path.join(units, 'nodescale-web.service'), 'utf8'), /^TimeoutStopSec=30$/m);
  assert.equal((await h.cli(['startup', '--dir', units], path.dirname(project))).code, 2, 'no config, no name');
});
