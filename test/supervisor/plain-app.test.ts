/**
 * `nodescale run` used as pm2 users use it: a plain node:http app with the defaults, and a supervisor whose output
 * pipe closes (`| head`, a `| tee` stopped with Ctrl-C).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { runBin } from '../helpers/cli.ts';
import { closedPort } from '../helpers/servers.ts';
import { PLAIN_APP, startRun } from '../helpers/supervisor.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitUntil } from '../helpers/wait.ts';

interface Status {
  workers: { slot: number; state: string; restarts: number; generation: number }[];
}
const status = async (name: string): Promise<Status> =>
  JSON.parse((await runBin(['status', '--name', name, '--json'])).stdout) as Status;

test('a plain node:http app with the defaults is ready once it listens, and stays up over a reload (0 restarts)', async (t) => {
  const port = await closedPort();
  const run = startRun(
    t,
    ['-w', '2', '--stability', '200ms', '--probation', '200ms'],
    { APP_PORT: String(port) },
    PLAIN_APP,
  );
  await run.waitFor(/2 worker\(s\) ready/);
  assert.match(run.stderr(), /readiness: a worker without nodescale\/runtime is ready once it listens/);
  assert.equal(run.stderr().match(/readiness: /g)?.length, 1, 'the rule is said once');
  // Ready, not merely started: under the old rule a plain app stayed 'starting' until the ready timeout killed it.
  assert.deepEqual(
    (await status(run.name)).workers.map((w) => w.state),
    ['ready', 'ready'],
  );
  assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /^plain \d+/);
  const reload = await runBin(['reload', '--name', run.name]);
  assert.equal(reload.code, 0, reload.stderr);
  const after = await status(run.name);
  assert.deepEqual(
    after.workers.map((w) => [w.generation, w.state, w.restarts]),
    [
      [2, 'ready', 0],
      [2, 'ready', 0],
    ],
  );
  assert.doesNotMatch(run.stderr(), /not ready within|restarting in/);
  assert.equal((await runBin(['stop', '--name', run.name])).code, 0);
  assert.equal(await run.exited, 0);
});

test('a supervisor whose stdout and stderr readers are gone keeps its app serving and answering control', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '1', '--probation', '200ms'], { APP_PORT: String(port) }, PLAIN_APP);
  await run.waitFor(/1 worker\(s\) ready/);
  const app = `http://127.0.0.1:${port}`;
  await waitUntil(() => /plain app listening/.test(run.stdout()), 'the app printed its first line');
  // `| head -1`: the reader takes a line and goes away; each request now writes to a closed pipe (EPIPE).
  run.child.stdout!.destroy();
  for (let i = 0; i < 20; i++) assert.equal((await fetch(`${app}/`)).status, 200);
  assert.equal((await status(run.name)).workers.length, 1);
  // Then stderr too (a `| tee` of both, stopped): the supervisor's own log lines and the worker's stderr.
  run.child.stderr!.destroy();
  for (let i = 0; i < 20; i++) assert.equal((await fetch(`${app}/err`)).status, 200);
  const reload = await runBin(['reload', '--name', run.name]);
  assert.equal(reload.code, 0, reload.stderr);
  assert.equal((await status(run.name)).workers[0]!.state, 'ready');
  assert.equal((await fetch(`${app}/`)).status, 200);
  assert.equal((await runBin(['stop', '--name', run.name])).code, 0);
  assert.equal(await run.exited, 0);
  assert.equal(existsSync(defaultControlPath(run.name)), false, 'the control socket is removed');
});

test('stop waits until the supervisor has exited (the name is free at once); reload prints its progress; one supervisor needs no --name', async (t) => {
  // A private TMPDIR: the supervisors other test files run are not this user's only ones here.
  const tmp = tempDir(t, 'ns-names-');
  const env = { TMPDIR: tmp };
  const port = await closedPort();
  const args = ['-w', '2', '--stability', '100ms', '--probation', '300ms'];
  const first = startRun(t, args, { ...env, APP_PORT: String(port) }, PLAIN_APP);
  await first.waitFor(/2 worker\(s\) ready/);
  // Exactly one supervisor of this user: status, reload and stop find it without --name.
  const status = await runBin(['status', '--json'], env);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as Status).workers.length, 2);
  const reload = await runBin(['reload'], env);
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stderr, /reload: worker 0 replaced \(pid \d+\), 1 of 2/);
  assert.match(reload.stderr, /reload: worker 1 replaced \(pid \d+\), 2 of 2/);
  assert.match(reload.stderr, /reload: every slot replaced; on probation for \d/);
  // Two: the error names both.
  const second = startRun(t, ['-w', '1'], env, PLAIN_APP);
  await second.waitFor(/1 worker\(s\) ready/);
  const which = await runBin(['status'], env);
  assert.equal(which.code, 2);
  assert.match(
    which.stderr,
    new RegExp(
      `2 supervisors run \\((${first.name}, ${second.name}|${second.name}, ${first.name})\\): say which with --name`,
    ),
  );
  // The same name twice: the message says to pass --name.
  const twin = await runBin(['run', PLAIN_APP, '--name', first.name, '-w', '1'], env);
  assert.equal(twin.code, 1);
  assert.match(
    twin.stderr,
    /NS_ERR_ADMIN_IN_USE: another nodescale run already uses the name .*give this one --name NAME/,
  );
  // stop returns once the supervisor is gone: its name can be used again at once.
  const stop = await runBin(['stop', '--name', first.name], env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^stopped \(pid (\d+)\): every worker drained/);
  const pid = Number(/pid (\d+)/.exec(stop.stdout)![1]);
  assert.throws(() => process.kill(pid, 0), 'the supervisor has exited');
  const again = startRun(t, ['-w', '1', '--name', first.name], { ...env, APP_PORT: String(port) }, PLAIN_APP);
  await again.waitFor(/1 worker\(s\) ready/);
  assert.equal(
    (await runBin(['stop', '--name', first.name, '--no-wait'], env)).stdout,
    `stopping (pid ${again.child.pid})\n`,
  );
  assert.equal(await again.exited, 0);
  assert.equal((await runBin(['stop', '--name', second.name], env)).code, 0);
  assert.equal(await second.exited, 0);
});
