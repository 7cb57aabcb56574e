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
