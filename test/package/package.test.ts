/**
 * The package as a user installs it: `npm pack`, then `npm install ./nodescale-*.tgz` into a fresh project, which gets
 * a real copy under node_modules (where Node does not strip types, so only the compiled dist/ can run). Exercised on
 * Node 22 (the `node@22` package installed into that project, as a user would) and on Node 24 (the one running this
 * suite), and refused in one line on an older Node when the machine has one.
 *
 * Needs the npm registry (the package's dependencies and node@22 come from it; npm's cache makes a second run fast).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const REPO = new URL('../../', import.meta.url).pathname;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// The repository's scripts resolve nodescale to its sources (--conditions=nodescale-source); a user's project does not.
const { NODE_OPTIONS: _repoOnly, ...userEnv } = process.env;

let work: string;
let project: string;
let tarball: { file: string; size: number; files: string[] };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: project, env: options.env ?? userEnv, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A long-running command of the project's, with its output; stopped after the test with its whole process group. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv = userEnv) {
  const child = spawn(command, args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const changed = new EventEmitter();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    changed.emit('output');
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  // 'close': every process that shares the output pipes is gone (npx's child outlives npx by a moment).
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.on('exit', () => changed.emit('output'));
  return {
    output: () => output,
    async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`exited before ${pattern}:\n${output}`);
        await once(changed, 'output');
      }
    },
    /** SIGTERM to the group, as Ctrl-C reaches every process of a terminal's job (npx runs the bin in a child). */
    async stop(): Promise<number | null> {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
      return exited;
    },
  };
}

// A user's app: nodescale/runtime in front of a node:http server, a task on nodescale/compute's worker-thread pool.
const APP = `import http from 'node:http';
import { protect } from 'nodescale/runtime';
import { createCompute } from 'nodescale/compute';

const compute = await createCompute({ transport: 'pool', threads: 1, tasks: new URL('./tasks.mjs', import.meta.url) });
const server = http.createServer(async (req, res) => {
  res.end(\`square \${await compute.call('square', 7)} on \${process.version}\`);
});
protect(server, { postMortem: false, logger: () => {} });
server.listen(Number(process.env.PORT), '127.0.0.1');
`;
const TASKS = `export const tasks = { square: (n) => n * n };\n`;

// A TypeScript consumer, type-checked against the published declarations. The @ts-expect-error lines fail the
// check if the declarations are missing or lose their types (an \`any\` accepts anything).
const CONSUMER = `import http from 'node:http';
import { protect, type RuntimeOptions } from 'nodescale/runtime';
import { createCompute, type Compute } from 'nodescale/compute';
import { runBench, NodescaleError, type BenchResult } from 'nodescale';

const options: RuntimeOptions = { overload: { maxEventLoopDelayMs: 200 } };
const runtime = protect(http.createServer(), options);
const compute: Compute = await createCompute({ transport: 'inline', tasks: new URL('./tasks.mjs', import.meta.url) });
const result: BenchResult = await runBench({ url: 'http://127.0.0.1:1/', durationMs: 1 });
export const figures: [number, string, boolean] = [result.requests.total, compute.transport, runtime instanceof Object && new NodescaleError('NS_ERR_USAGE', 'x').code === 'NS_ERR_USAGE'];
// @ts-expect-error: durationMs is a number
await runBench({ url: 'http://127.0.0.1:1/', durationMs: '1s' });
// @ts-expect-error: no such export
import { notExported } from 'nodescale/runtime';
export { notExported };
`;

/** A Node older than the package supports, if this machine has one on its PATH (Debian's Node 20 does here). */
function olderNode(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
      if (Number(/^v(\d+)/.exec(version)?.[1]) < 22) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'nodescale-package-'));
  project = path.join(work, 'project');
  mkdirSync(project);
  // prepack builds dist/ first; --json lists what went into the tarball.
  const packed = JSON.parse(
    execFileSync(NPM, ['pack', '--json', '--pack-destination', work], {
      cwd: REPO,
      env: userEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  ) as [{ filename: string; size: number; files: { path: string }[] }];
  tarball = {
    file: path.join(work, packed[0].filename),
    size: packed[0].size,
    files: packed[0].files.map((f) => f.path),
  };
  writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'user-project', version: '1.0.0', type: 'module', private: true }),
  );
  writeFileSync(path.join(project, 'app.mjs'), APP);
  writeFileSync(path.join(project, 'tasks.mjs'), TASKS);
  writeFileSync(path.join(project, 'consumer.ts'), CONSUMER);
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2024',
        module: 'nodenext',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: false,
      },
      files: ['consumer.ts'],
    }),
  );
  // What a user types. The node@22 devDependency gives the project its own Node 22: npx and npm scripts run on it.
  const install = await run(
    NPM,
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      tarball.file,
      'node@22',
      '@types/node@24',
      'typescript@6',
    ],
    { timeoutMs: 300_000 },
  );
  assert.equal(install.code, 0, install.stderr);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  test('holds the compiled code, its declarations and source maps, the sources they point at, and nothing for us alone', () => {
    console.log(`packed: ${(tarball.size / 1024).toFixed(0)} KiB, ${tarball.files.length} files`);
    for (const file of [
      'bin/nodescale.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/runtime/index.d.ts.map',
      'dist/compute/pool-worker.js',
      'dist/loadtest/worker.js',
      'src/index.ts',
      'package.json',
      'README.md',
      'LICENSE',
    ]) {
      assert.ok(tarball.files.includes(file), `${file} is not in the package`);
    }
    const strays = tarball.files.filter(
      (file) => /^(test|bench|docs|\.ci)\//.test(file) || /\.(png|svg|tgz)$/.test(file),
    );
    assert.deepEqual(strays, []);
    assert.ok(tarball.size < 1024 * 1024, `the package packs to ${tarball.size} bytes`);
  });

  test('a TypeScript consumer type-checks against the published declarations', async () => {
    const tsc = await run(process.execPath, [path.join(project, 'node_modules/typescript/bin/tsc'), '-p', project]);
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
  });

  test('a stack trace through the package points at its TypeScript sources', async () => {
    const script = `import { createCompute } from 'nodescale/compute';\ntry { await createCompute({ transport: 'carrier-pigeon' }); } catch (e) { console.log(e.code); console.log(e.stack); }`;
    const ran = await run(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^NS_ERR_INVALID_OPTION/);
    assert.match(ran.stdout, /node_modules\/nodescale\/src\/compute\/compute\.ts:\d+/);
  });
});

for (const node of ['22', '24'] as const) {
  describe(`installed, on Node ${node}`, () => {
    // Node 22: npx, which runs the project's node@22 (first on its PATH). Node 24: the bin run by this suite's Node.
    const nodescale = (args: string[]) =>
      (node === '22'
        ? ['npx', ['--no-install', 'nodescale', ...args]]
        : [process.execPath, [path.join(project, 'node_modules/nodescale/bin/nodescale.js'), ...args]]) as [
        string,
        string[],
      ];

    test('the library imports from compiled JavaScript', async () => {
      const script = `import * as root from 'nodescale'; import { protect } from 'nodescale/runtime'; import { createCompute } from 'nodescale/compute';
console.log(process.version, typeof root.runBench, typeof protect, typeof createCompute, import.meta.resolve('nodescale/runtime'));`;
      const ran =
        node === '22'
          ? await run('npx', ['--no-install', 'node', '--input-type=module', '-e', script])
          : await run(process.execPath, ['--input-type=module', '-e', script]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(
        ran.stdout,
        new RegExp(
          `^v${node}\\.\\S+ function function function file://\\S+/node_modules/nodescale/dist/runtime/index\\.js$`,
          'm',
        ),
      );
      const required = await run(node === '22' ? 'npx' : process.execPath, [
        ...(node === '22' ? ['--no-install', 'node'] : []),
        '-e',
        `console.log(typeof require('nodescale/runtime').protect)`,
      ]);
      assert.equal(required.stdout, 'function\n', `CommonJS require(): ${required.stderr}`);
    });

    test('nodescale --help', async () => {
      const ran = await run(...nodescale(['--help']));
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /Usage: nodescale <command>/);
    });

    test('nodescale hello http, measured by nodescale bench on two generator threads', async (t) => {
      const hello = start(...nodescale(['hello', 'http', '--port', '0']));
      t.after(() => hello.stop());
      const [, url] = await hello.waitFor(/listening on (\S+)/);
      const bench = await run(...nodescale(['bench', url!, '-c', '4', '-w', '2', '-d', '1s', '--json']));
      assert.equal(bench.code, 0, bench.stderr);
      const result = JSON.parse(bench.stdout) as { requests: { total: number }; errors: { total: number } };
      assert.ok(result.requests.total > 0);
      assert.equal(result.errors.total, 0);
    });

    test('nodescale run app.js: the supervisor forks the user app on this Node; its compute pool runs from the package', async (t) => {
      const port = await freePort();
      const supervised = start(...nodescale(['run', 'app.mjs', '--name', `pkg-${process.pid}-${node}`, '-w', '1']), {
        ...userEnv,
        PORT: String(port),
      });
      t.after(() => supervised.stop());
      await supervised.waitFor(/1 worker\(s\) ready/);
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(
        await response.text(),
        `square 49 on ${node === '22' ? (await run('npx', ['--no-install', 'node', '--version'])).stdout.trim() : process.version}`,
      );
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /nodejs_eventloop_lag|nodescale_/);
      await supervised.stop();
      assert.match(supervised.output(), /nodescale run: stopped/);
    });
  });
}

describe('on a Node older than 22.18', () => {
  const old = olderNode();

  test(
    'the CLI and the library say which Node they need, in one line with NS_ERR_NODE_VERSION',
    { skip: old === null && 'no Node older than 22 on this machine' },
    async () => {
      const cli = await run(old!, [path.join(project, 'node_modules/nodescale/bin/nodescale.js'), '--help']);
      assert.equal(cli.code, 1);
      assert.match(
        cli.stderr,
        /^error NS_ERR_NODE_VERSION: nodescale needs Node >= 22\.18 .*npm install --save-dev node@24.*\n$/,
      );
      assert.equal(cli.stderr.split('\n').length, 2, cli.stderr);
      const lib = await run(old!, [
        '--input-type=module',
        '-e',
        `try { await import('nodescale/runtime'); } catch (e) { console.log(e.code + ': ' + e.message); }`,
      ]);
      assert.equal(lib.code, 0, lib.stderr);
      assert.equal(lib.stdout, cli.stderr.replace(/^error /, ''));
    },
  );
});

test('the compiled output is never committed', () => {
  const tracked = execFileSync('git', ['ls-files', 'dist'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(tracked, '');
  assert.ok(readdirSync(path.join(REPO, 'dist')).includes('index.js'), 'npm pack built dist/');
});
