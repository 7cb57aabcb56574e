/**
 * `nodescale demo --scale-out` end to end, as a user runs it: a private redis-server and rabbitmq-server, the API
 * tier and the compute tier under two `nodescale run`; the banner's commands work; Ctrl-C stops everything in order
 * and leaves nothing running. Without a server installed: one line with a code, exit 1, nothing started.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { accepts } from '../../src/servers/process.ts';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { BIN, runBin } from '../helpers/cli.ts';
import { waitUntil } from '../helpers/wait.ts';

/** Processes whose command line contains `text` (ours: the supervisors and workers carry the demo's name). */
function processesWith(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(text))
        found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The command lines of every process under `root`, by pid. */
function descendantCommandLines(root: number): Map<number, string> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found = new Map<number, string>();
  const visit = (pid: number) => {
    for (const [child, parent] of parents)
      if (parent === pid && !found.has(child)) {
        try {
          found.set(child, readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' '));
        } catch {
          continue;
        }
        visit(child);
      }
  };
  visit(root);
  return found;
}

test('demo --scale-out: the banner, its commands, and Ctrl-C stopping everything in order', async (t) => {
  const name = `so${process.pid}`;
  const demo = spawn(
    process.execPath,
    [
      BIN,
      'demo',
      '--scale-out',
      '--port',
      '0',
      '--corpus-port',
      '0',
      '--metrics-port',
      '0',
      '--compute-metrics-port',
      '0',
      '--dashboard-port',
      '0',
      '--name',
      name,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  demo.stdout.on('data', (chunk) => (out += chunk));
  demo.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
  t.after(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL');
    for (const pid of processesWith(`--name ${name}`)) process.kill(pid, 'SIGKILL');
    rmSync(defaultControlPath(name), { force: true });
    rmSync(defaultControlPath(`${name}-compute`), { force: true });
  });
  await waitUntil(() => out.includes('Ctrl-C stops everything') || demo.exitCode !== null, 'the banner', 120_000);
  assert.equal(demo.exitCode, null, `the demo is running: ${err.slice(-2000)}`);
  const api = /(http:\/\/127\.0\.0\.1:\d+)\/graphql/.exec(out)![1]!;
  const corpus = /corpus\s+(http:\S+)\//.exec(out)![1]!;
  const brokerPort = Number(/broker\s+amqp:\/\/[^@]+@127\.0\.0\.1:(\d+)/.exec(out)![1]);
  const storePort = Number(/store\s+redis:\/\/:\*\*\*@127\.0\.0\.1:(\d+)/.exec(out)![1]);
  // One dashboard for both tiers.
  const dashboard = /dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1]!;
  await waitUntil(
    async () => {
      const { apps } = (await (await fetch(`${dashboard}api/snapshot`)).json()) as {
        apps: { name: string; workers: unknown[] }[];
      };
      return apps.map((app) => `${app.name} ${app.workers.length}`).join() === `${name} 2,${name}-compute 1`;
    },
    'both tiers on the dashboard, with their workers',
    30_000,
  );
  assert.doesNotMatch(out, /guest/, 'no guest user');
  assert.doesNotMatch(out, /:\/\/[^\s*]*:[^\s*]+@/, 'no password in the banner');
  // The tiers get the broker's and the store's URLs in their environment: no command line other users can read
  // (/proc/PID/cmdline) carries them.
  const lines = descendantCommandLines(demo.pid!);
  assert.ok(
    [...lines.values()].some((line) => line.includes(' tagger')),
    'the tiers are found',
  );
  for (const [pid, line] of lines)
    assert.doesNotMatch(line, /(amqp|redis):\/\//, `process ${pid} has a URL on its command line: ${line}`);

  // The banner's first two commands: tags through the broker, urls from Redis.
  const post = await fetch(`${api}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ tags(url: "${corpus}/articles/astronomy-1.html") }` }),
  });
  const tags = ((await post.json()) as { data: { tags: string[] } }).data.tags;
  assert.ok(tags.includes('telescope'), JSON.stringify(tags));
  const urls = await fetch(
    `${api}/graphql?query=${encodeURIComponent('{ urls(tag: "telescope") health { status store compute } }')}`,
  );
  assert.deepEqual(await urls.json(), {
    data: {
      urls: [`${corpus}/articles/astronomy-1.html`],
      health: { status: 'ok', store: 'redis', compute: 'amqp' },
    },
  });
  // bench, status and scale of the compute tier.
  const bench = await runBin(['bench', `${api}/benchmark/get-tags`, '-c', '4', '-d', '2s', '--json']);
  assert.equal(bench.code, 0, bench.stderr);
  const result = JSON.parse(bench.stdout) as { requests: { total: number }; errors: { total: number } };
  assert.ok(result.requests.total > 0);
  assert.equal(result.errors.total, 0);
  const scale = await runBin(['scale', '2', '--name', `${name}-compute`]);
  assert.equal(scale.code, 0, scale.stderr);
  const status = await runBin(['status', '--name', `${name}-compute`, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { workers: unknown[] }).workers.length, 2);

  // Ctrl-C: the API tier stops first, then the compute tier, then the servers; exit 0, nothing left.
  demo.kill('SIGINT');
  assert.equal(await exited, 0, err.slice(-2000));
  const order = [
    '[api] nodescale run: stopped',
    '[compute] nodescale run: stopped',
    'nodescale demo --scale-out: stopped',
  ];
  const positions = order.map((line) => err.indexOf(line));
  assert.ok(
    positions.every((p) => p >= 0),
    `every tier says it stopped: ${err.slice(-1500)}`,
  );
  assert.deepEqual(
    [...positions].sort((a, b) => a - b),
    positions,
    'API tier, then compute tier, then the rest',
  );
  assert.deepEqual(processesWith(`--name ${name}`), [], 'no supervisor or worker left');
  assert.equal(await accepts(brokerPort), false, 'the broker is stopped');
  assert.equal(await accepts(storePort), false, 'Redis is stopped');
  assert.equal(await accepts(Number(new URL(api).port)), false, 'the API is stopped');
  // redis-server names itself "redis-server 127.0.0.1:<port>" in ps.
  assert.deepEqual(processesWith(`127.0.0.1:${storePort}`), [], 'no redis-server left');
});

test('demo --scale-out without redis-server installed: one line with its code, exit 1, nothing started', async () => {
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [BIN, 'demo', '--scale-out', '--port', '0'],
      { env: { ...process.env, PATH: '/nonexistent' } },
      (error, _stdout, stderr) => resolve({ code: typeof error?.code === 'number' ? error.code : 0, stderr }),
    ),
  );
  assert.equal(code, 1);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /NS_ERR_NOT_INSTALLED.*apt-get install redis-server/);
});

test('demo flags: --scale-out with --compute, or --broker without --scale-out, are usage errors (exit 2)', async () => {
  for (const argv of [
    ['demo', '--scale-out', '--compute', 'pool'],
    ['demo', '--broker', 'amqp://127.0.0.1'],
    ['demo', '--scale-out', '--store', 'http://127.0.0.1:6379'],
  ]) {
    const { code, stderr } = await runBin(argv);
    assert.equal(code, 2, `${argv.join(' ')}: ${stderr}`);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  }
});
