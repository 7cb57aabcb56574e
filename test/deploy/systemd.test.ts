/**
 * `nodescale deploy systemd`: the unit checked by systemd's own `systemd-analyze verify`, its run options checked as
 * nodescale run checks them, and the supervisor speaking systemd's notify protocol (READY=1 once every worker is
 * ready, WATCHDOG=1 from its event loop) to a datagram socket standing for systemd (socat, as NOTIFY_SOCKET).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { startRun, SUPERVISED_APP } from '../helpers/supervisor.ts';
import { waitUntil } from '../helpers/wait.ts';

test('deploy systemd: a unit systemd-analyze verify accepts, for nodescale run with its options; bad ones refused', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-systemd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'api.service');
  const ran = await runCli([
    'deploy',
    'systemd',
    '--name',
    'api',
    '-w',
    '2',
    '--grace',
    '20s',
    '-o',
    file,
    '--',
    SUPERVISED_APP,
    '--port',
    '3000',
  ]);
  assert.equal(ran.code, 0, ran.stderr);
  const unit = readFileSync(file, 'utf8');
  for (const line of [
    'Type=notify',
    'NotifyAccess=all',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Restart=on-failure',
    'LimitNOFILE=65536',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
  ])
    assert.match(unit, new RegExp(`^${line}$`, 'm'), line);
  assert.match(
    unit,
    /^ExecStart=\S+ \S+nodescale\.js run \S+supervised-app\.ts -w 2 --grace 20s --name api -- --port 3000$/m,
  );
  assert.match(unit, /^ExecReload=\S+ \S+nodescale\.js reload --name api$/m);
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  assert.doesNotMatch(verify.stderr, /Unknown (key|section)|Invalid|Failed to parse/, verify.stderr);

  for (const [argv, message] of [
    [['-w', '0'], /NS_ERR_INVALID_OPTION: --workers/],
    [['--bogus'], /NS_ERR_USAGE/],
  ] as const) {
    const bad = await runCli([
      'deploy',
      'systemd',
      '--name',
      'api',
      ...argv,
      '-o',
      file + '.bad',
      '--',
      SUPERVISED_APP,
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
  const missing = await runCli(['deploy', 'systemd', '--name', 'api', '--', path.join(dir, 'no-app.js')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /NS_ERR_APP_NOT_FOUND/);
  const noApp = await runCli(['deploy', 'systemd', '--name', 'api']);
  assert.equal(noApp.code, 2);
  assert.match(noApp.stderr, /give the app after --/);
});

test('under systemd, nodescale run says READY=1 once every worker is ready, with its pid, and keeps the watchdog alive', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'notify.sock');
  // systemd's side: a datagram socket whose messages are printed (socat, from Debian; installed by .ci/run).
  const systemd = spawn('socat', ['-u', `UNIX-RECVFROM:${socket},unlink-early,fork`, '-'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => systemd.kill());
  let received = '';
  systemd.stdout.on('data', (chunk: Buffer) => (received += chunk.toString()));
  await waitUntil(() => {
    try {
      return readFileSync(socket) !== undefined;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  }, 'socat listens');
  const run = startRun(t, ['-w', '2'], { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' });
  await run.waitFor(/2 worker\(s\) ready/);
  await waitUntil(() => /READY=1/.test(received), `READY=1 sent: ${received}`);
  assert.match(received, /STATUS=2 worker\(s\) ready/);
  assert.match(received, new RegExp(`MAINPID=${run.child.pid}\\b`));
  await waitUntil(() => (received.match(/WATCHDOG=1/g) ?? []).length >= 2, `the watchdog kept alive: ${received}`);
});
