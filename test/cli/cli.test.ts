import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBenchArgs } from '../../src/cli/bench.ts';
import { CLI_COMMANDS, version } from '../../src/cli/main.ts';
import { parseSweepArgs } from '../../src/cli/sweep.ts';
import { NodescaleError } from '../../src/errors.ts';
import { closedPort, countingServer } from '../helpers/servers.ts';
import { runBin, runCli } from '../helpers/cli.ts';

const usage = (code: string) => (error: unknown) => error instanceof NodescaleError && error.code === code;

test('bench flags parse into options, in human units', () => {
  const { options, json } = parseBenchArgs([
    'http://h:1/x',
    '-c',
    '64',
    '-d',
    '1.5s',
    '-p',
    '10',
    '-w',
    '2',
    '--warmup',
    '500ms',
    '-H',
    'a: b',
    '--header',
    'C:d',
    '-m',
    'POST',
    '-b',
    'hi',
    '-t',
    '2s',
    '--json',
  ]);
  assert.deepEqual(options, {
    url: 'http://h:1/x',
    connections: 64,
    pipelining: 10,
    workers: 2,
    warmupMs: 500,
    durationMs: 1500,
    method: 'POST',
    headers: { a: 'b', C: 'd' },
    body: 'hi',
    timeoutMs: 2000,
  });
  assert.equal(json, true);
  assert.deepEqual(parseBenchArgs(['http://h/', '-n', '100', '-R', '250.5']).options, {
    url: 'http://h/',
    amount: 100,
    rate: 250.5,
  });
});

test('bad flags are usage errors that name the flag', () => {
  assert.throws(() => parseBenchArgs(['http://h/', '--bogus']), usage('NS_ERR_USAGE'));
  assert.throws(() => parseBenchArgs([]), usage('NS_ERR_USAGE'));
  assert.throws(() => parseBenchArgs(['http://h/', 'extra']), usage('NS_ERR_USAGE'));
  assert.throws(() => parseBenchArgs(['http://h/', '-c']), usage('NS_ERR_USAGE'));
  assert.throws(
    () => parseBenchArgs(['http://h/', '-c', 'abc']),
    (e: unknown) => usage('NS_ERR_INVALID_OPTION')(e) && /--connections/.test((e as Error).message),
  );
  assert.throws(() => parseBenchArgs(['http://h/', '-d', '10 parsecs']), usage('NS_ERR_INVALID_OPTION'));
  assert.throws(() => parseBenchArgs(['http://h/', '-H', 'no-colon']), usage('NS_ERR_INVALID_OPTION'));
  assert.throws(
    () => parseBenchArgs(['http://h/', '-R', '0']),
    (e: unknown) => usage('NS_ERR_INVALID_OPTION')(e) && /--rate must be a number > 0/.test((e as Error).message),
  );
  assert.throws(() => parseBenchArgs(['http://h/', '--body-file', '/nonexistent/file']), usage('NS_ERR_BODY_FILE'));
  assert.throws(() => parseSweepArgs(['http://h/', '--levels', '1,x']), usage('NS_ERR_INVALID_OPTION'));
  assert.throws(() => parseSweepArgs(['http://h/', '--levels', '1,2', '--from', '1']), usage('NS_ERR_USAGE'));
  assert.throws(() => parseSweepArgs(['http://h/', '--max-errors', '150%']), usage('NS_ERR_INVALID_OPTION'));
  assert.throws(() => parseSweepArgs(['http://h/', '-c', '5']), usage('NS_ERR_USAGE'));
  // A negative number is the option's value, refused for what the option expects (parseArgs would call it ambiguous).
  for (const argv of [
    ['-c', '-5'],
    ['--connections', '-5'],
  ]) {
    assert.throws(
      () => parseBenchArgs(['http://h/', ...argv]),
      (e: unknown) =>
        usage('NS_ERR_INVALID_OPTION')(e) && (e as Error).message === '--connections must be a whole number, got "-5"',
    );
  }
  // parseArgs' own complaints are one line.
  assert.throws(
    () => parseBenchArgs(['http://h/', '-c', '-x']),
    (e: unknown) => usage('NS_ERR_USAGE')(e) && !(e as Error).message.includes('\n'),
  );
});

test('sweep levels come from --levels or a geometric range', () => {
  assert.deepEqual(parseSweepArgs(['http://h/', '--levels', '1,4,16']).options.levels, [1, 4, 16]);
  assert.deepEqual(
    parseSweepArgs(['http://h/', '--from', '1', '--to', '100', '--factor', '3']).options.levels,
    [1, 3, 9, 27, 81, 100],
  );
  assert.deepEqual(parseSweepArgs(['http://h/']).options.levels, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  const rate = parseSweepArgs([
    'http://h/',
    '--rate-sweep',
    '--levels',
    '100,200',
    '-c',
    '16',
    '--max-errors',
    '5%',
    '--max-p99',
    '50ms',
  ]).options;
  assert.equal(rate.mode, 'rate');
  assert.equal(rate.connections, 16);
  assert.equal(rate.maxErrorRatio, 0.05);
  assert.equal(rate.maxP99Ms, 50);
});

test('exit codes: 0 for help and version, 2 for usage errors, 1 for failures', async () => {
  assert.equal((await runCli(['--help'])).code, 0);
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), version());
  for (const command of CLI_COMMANDS) {
    const help = await runCli([command.name, '--help']);
    assert.equal(help.code, 0, command.name);
    assert.match(help.stdout, new RegExp(`Usage: nodescale ${command.name}`));
  }
  // -h too, and help wins over a bad flag beside it; after `--` the arguments are the app's, not nodescale run's.
  const short = await runCli(['scale', '-h']);
  assert.equal(short.code, 0);
  assert.match(short.stdout, /^Usage: nodescale scale \[NAME\] N /);
  assert.equal((await runCli(['bench', '--bogus', '--help'])).code, 0);
  const appHelp = await runCli(['run', 'no-such-app.js', '--', '--help']);
  assert.equal(appHelp.code, 2);
  assert.match(appHelp.stderr, /^error NS_ERR_APP_NOT_FOUND: /);
  const none = await runCli([]);
  assert.equal(none.code, 2);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error NS_ERR_UNKNOWN_COMMAND: /);
  const badFlag = await runCli(['bench', 'http://127.0.0.1:1/', '--connections', 'many']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /^error NS_ERR_INVALID_OPTION: --connections must be a whole number, got "many"\n$/);
  const badUrl = await runCli(['bench', 'localhost:3000']);
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.stderr, /NS_ERR_INVALID_URL/);
  const port = await closedPort();
  const unreachable = await runCli(['bench', `http://127.0.0.1:${port}/`, '-d', '30s']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /^error NS_ERR_TARGET_UNREACHABLE: could not connect/);
  assert.equal(unreachable.stderr.split('\n').length, 2, 'one line, no stack trace');
});

test('bench prints a wrk-like table, or one JSON object with --json', async (t) => {
  const server = await countingServer(t);
  const table = await runCli(['bench', server.url, '-c', '4', '-n', '500']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /Latency\s+p50\s+p75\s+p90\s+p99\s+p99\.9\s+p99\.99\s+max\s+mean\s+stdev/);
  assert.match(table.stdout, /Status\s+200: 500/);
  assert.match(table.stdout, /µs CPU per request/);
  const json = await runCli(['bench', server.url, '-c', '4', '-n', '500', '--json']);
  const result = JSON.parse(json.stdout);
  assert.equal(result.requests.total, 500);
  for (const key of ['p50', 'p90', 'p99', 'p999', 'max', 'mean'])
    assert.equal(typeof result.latencyMs[key], 'number', key);
  assert.deepEqual(result.statusCodes, { '200': 500 });
  assert.equal(result.errors.total, 0);
  assert.equal(typeof result.bytes.total, 'number');
  assert.equal(typeof result.generator.cpuMicrosPerRequest, 'number');
  const open = JSON.parse((await runCli(['bench', server.url, '-c', '4', '-n', '100', '-R', '1000', '--json'])).stdout);
  assert.equal(typeof open.notSentOnTime, 'number');
});

test('a progress bar is drawn on stderr only when it is a terminal', async (t) => {
  const server = await countingServer(t);
  const quiet = await runCli(['bench', server.url, '-c', '2', '-d', '600ms']);
  assert.equal(quiet.stderr, '');
  const tty = await runCli(['bench', server.url, '-c', '2', '-d', '600ms'], { interactive: true });
  assert.match(tty.stderr, /measuring .*█/);
});

test('the real binary: one error line, exit 2 for usage, stack trace only with --debug', async () => {
  const bad = await runBin(['bench', 'http://127.0.0.1:1/', '-p', '0']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'error NS_ERR_INVALID_OPTION: pipelining must be an integer from 1 to 1024, got 0\n');
  const ok = await runBin(['--version']);
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout.trim(), version());
  const debug = await runBin(['bench', 'http://127.0.0.1:1/', '-p', '0', '--debug']);
  assert.match(debug.stderr, /at resolveBenchOptions/);
});

test('help and usage say what the command takes: sweep, console, scale, console --name, a name that does not resolve', async () => {
  const sweepHelp = (await runCli(['sweep', '--help'])).stdout;
  assert.equal(sweepHelp.match(/--warmup/g)?.length, 1, 'one --warmup, the per-level one');
  assert.match(sweepHelp, /with --rate-sweep: connections kept open \(default 64\)/);
  const consoleHelp = (await runCli(['console', '--help'])).stdout;
  assert.match(consoleHelp, /^ {2}samples \[N \| --count N\] /m);
  assert.doesNotMatch(consoleHelp, /unwatch|\(args:/);
  const scale = await runCli(['scale', '-1', '--name', 'x']);
  assert.equal(scale.code, 2);
  assert.match(scale.stderr, /workers must be a whole number ≥ 1, got "-1"/);
  const noWorker = await runCli(['console', '--name', 'x', 'stats']);
  assert.equal(noWorker.code, 2);
  assert.match(noWorker.stderr, /--name and --control reach a worker of nodescale run: give --worker N too/);
  const dns = await runCli(['bench', 'http://no-such-host.invalid/', '-d', '1s']);
  assert.equal(dns.code, 1);
  assert.match(dns.stderr, /^error NS_ERR_TARGET_UNREACHABLE: cannot resolve no-such-host\.invalid \(DNS: ENOTFOUND\)/);
});
