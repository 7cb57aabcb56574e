/**
 * `nodescale lab` as a user runs it: up (two regions, two API hosts each behind the region's haproxy), status, the
 * round-robin name, an API host killed behind its balancer under load (GETs retried on the other host: 0 failed),
 * bad input, and down, after which nothing of the lab is left: no namespace, no process, no file. Refused as another
 * user than root. Root only: skipped, saying why, where namespaces cannot be made.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import type { HostStatus } from '../../src/lab/fleet.ts';
import { removeDeadLab } from '../../src/lab/network.ts';
import { namespacesUnavailable } from '../../src/servers/netns.ts';
import { BIN, runBin } from '../helpers/cli.ts';
import { waitUntil } from '../helpers/wait.ts';

const unavailable = namespacesUnavailable();

test(
  'lab up, status, an API host killed behind its balancer under load (0 failed), a host frozen and thawed, down: nothing left',
  { skip: unavailable ?? false, timeout: 300_000 },
  async (t) => {
    let out = '';
    let err = '';
    const up: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'lab',
        'up',
        '--regions',
        '2',
        '--api-hosts',
        '2',
        '--compute-hosts',
        '1',
        '--broker-nodes',
        '1',
        '--redis-nodes',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    up.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    const made: { slot?: number } = {};
    t.after(async () => {
      // Whatever happened: the lab goes (its SIGTERM handler removes it all, as Ctrl-C does); were it gone without
      // that, what it left is removed here.
      if (up.exitCode === null) up.kill('SIGTERM');
      await exited;
      if (made.slot !== undefined) removeDeadLab(made.slot);
    });
    await waitUntil(() => /lab ready \(slot (\d+)\)/.test(out) || up.exitCode !== null, 'the lab is up', 180_000);
    assert.equal(up.exitCode, null, `lab up exited: ${err}`);
    const slot = (made.slot = Number(/lab ready \(slot (\d+)\)/.exec(out)![1]));

    const status = await runBin(['lab', 'status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const hosts = JSON.parse(status.stdout) as HostStatus[];
    assert.deepEqual(
      hosts.filter((host) => host.health !== 'ok'),
      [],
      'every host healthy',
    );
    const roles = (role: string, region?: number) =>
      hosts.filter((host) => host.role === role && (region === undefined || host.region === region));
    assert.deepEqual(
      [
        roles('balancer').length,
        roles('api').length,
        roles('compute').length,
        roles('broker').length,
        roles('redis').length,
        roles('generator').length,
      ],
      [2, 4, 2, 1, 1, 1],
    );
    assert.deepEqual(
      roles('wan').map((host) => host.region),
      [2],
      'region 2 reaches the shared tier through its relay',
    );
    assert.match((await runBin(['lab', 'status'])).stdout, /^HOST +REGION +ADDRESS +ROLE +HEALTH +RUNS\n/);

    // Round-robin DNS: the service's name is every region's balancer.
    const dns = roles('dns')[0]!;
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    resolver.setServers([dns.address]);
    assert.deepEqual(
      (await resolver.resolve4('tagger.lab')).sort(),
      roles('balancer')
        .map((host) => host.address)
        .sort(),
    );

    // An API host killed behind its balancer, under load through the balancer: haproxy retries the GETs that reach
    // the dead host on the other one, and stops sending it any once its checks fail.
    const balancer = roles('balancer', 2)[0]!;
    const victim = roles('api', 2)[0]!;
    // From the generator host, by the balancer's name (the host's own hosts file and DNS).
    const bench = runBin([
      ...['lab', 'exec', 'gen', '--', 'nodescale', 'bench'],
      `http://${balancer.name}/benchmark/get-tags`,
      ...['-c', '8', '-d', '8s', '--json'],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const killed = await runBin(['lab', 'fault', 'kill', victim.name]);
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, new RegExp(`killed every process on ${victim.name}`));
    const result = await bench;
    assert.equal(result.code, 0, result.stderr);
    const { requests, errors, statusCodes } = JSON.parse(result.stdout) as {
      requests: { total: number };
      errors: { total: number; non2xx: number };
      statusCodes: Record<string, number>;
    };
    t.diagnostic(
      `through ${balancer.name} while ${victim.name} was killed: ${requests.total} requests, status ${JSON.stringify(statusCodes)}`,
    );
    assert.ok(requests.total > 0);
    assert.deepEqual([errors.total, errors.non2xx], [0, 0], JSON.stringify({ errors, statusCodes }));
    const after = JSON.parse((await runBin(['lab', 'status', '--json'])).stdout) as HostStatus[];
    assert.notEqual(after.find((host) => host.name === victim.name)!.health, 'ok');

    // A frozen host is not a dead one: it accepts nothing it can answer, and thawed it serves again.
    const frozen = roles('api', 1)[0]!;
    const health = async () =>
      (JSON.parse((await runBin(['lab', 'status', '--json'])).stdout) as HostStatus[]).find(
        (host) => host.name === frozen.name,
      )!.health;
    assert.equal((await runBin(['lab', 'fault', 'freeze', frozen.name])).code, 0);
    assert.match(await health(), /^no answer/);
    assert.equal((await runBin(['lab', 'fault', 'thaw', frozen.name])).code, 0);
    await waitUntil(async () => (await health()) === 'ok', 'the thawed host answers again', 30_000);

    // Bad input: one line, a code, the exit status of its kind.
    const cases: [string[], number, RegExp][] = [
      [['lab', 'fault', 'kill', 'nosuch'], 1, /^error NS_ERR_LAB: the lab has no host "nosuch"\n$/],
      [
        ['lab', 'fault', 'melt', victim.name],
        2,
        /^error NS_ERR_USAGE: lab fault <kill\|freeze\|thaw\|partition\|heal\|latency\|dns-out\|dns-in>/,
      ],
      [['lab', 'fault', 'kill', 'region2'], 1, /^error NS_ERR_LAB: a region takes partition or heal/],
      [
        ['lab', 'fault', 'latency', 'region1', '40ms'],
        1,
        /^error NS_ERR_LAB: latency takes a region other than the first/,
      ],
      [['lab', 'fault', 'latency', 'region2'], 2, /^error NS_ERR_USAGE: lab fault latency <regionN> <round trip>/],
      [['lab', 'up', '--regions', '9'], 2, /^error NS_ERR_INVALID_OPTION: --regions must be 1 to 4 \(got 9\)\n$/],
      [['lab'], 2, /^error NS_ERR_USAGE: lab: give up, status, fault, exec or down/],
      [['lab', 'exec', 'nosuch', '--', 'true'], 1, /^error NS_ERR_LAB: the lab has no host nosuch: its hosts are /],
      [['lab', 'exec', 'gen'], 2, /^error NS_ERR_USAGE: lab exec <host> -- <command>/],
      [['lab', 'status', '--', 'true'], 2, /^error NS_ERR_USAGE: lab: only lab exec takes a command after --/],
      [['lab', 'exec', 'gen', '--', 'sh', '-c', 'exit 7'], 7, /^$/],
    ];
    for (const [argv, code, message] of cases) {
      const run = await runBin(argv);
      assert.equal(run.code, code, `${argv.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, argv.join(' '));
    }
    // Not root: refused in one line, before anything is made.
    if (existsSync('/usr/bin/setpriv')) {
      const refused = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'lab', 'status'],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let text = '';
        child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
        child.once('exit', (code) => resolve({ code, stderr: text }));
      });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^error NS_ERR_LAB: nodescale lab runs as root: it makes network namespaces \(ip netns\)\n$/,
      );
    }

    const down = await runBin(['lab', 'down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await exited, 0, err);
    // Nothing left: no namespace of the slot, no lock or socket, no route or link, no process of the lab.
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^nsl${slot}-`, 'm'));
    assert.deepEqual(
      readdirSync('/run/nodescale-lab').filter((file) => file.endsWith(`-${slot}`) || file.endsWith(`-${slot}.sock`)),
      [],
    );
    assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }), new RegExp(`nsl${slot}-up`));
    assert.equal(existsSync(`/etc/netns/nsl${slot}-dns`), false);
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`--name lab${slot}-`) || line.includes(`nodescale-lab${slot}-${up.pid}-haproxy`));
    assert.deepEqual(left, []);
  },
);
