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
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { listenForAnnouncements } from '../../src/ipc.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// The repository's scripts resolve nodescale to its sources (--conditions=nodescale-source); a user's project does not.
const { NODE_OPTIONS: _repoOnly, ...userEnv } = process.env;

let work: string;
let project: string;
interface Tarball {
  file: string;
  size: number;
  files: string[];
}
let tarball: Tarball;
const tarballs = new Map<string, Tarball>();

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd ?? project,
        env: options.env ?? userEnv,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
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
  // The nodescale package and the light ones (packages/*). prepack builds each one's dist/ first; --json lists what
  // went into each tarball.
  const packed = JSON.parse(
    execFileSync(NPM, ['pack', '--json', '--workspaces', '--include-workspace-root', '--pack-destination', work], {
      cwd: REPO,
      env: userEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  ) as { name: string; filename: string; size: number; files: { path: string }[] }[];
  for (const entry of packed) {
    tarballs.set(entry.name, {
      file: path.join(work, entry.filename),
      size: entry.size,
      files: entry.files.map((f) => f.path),
    });
  }
  tarball = tarballs.get('nodescale')!;
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

/** What an install put under a project's node_modules: how many packages, and their files' bytes. */
function footprint(dir: string): { packages: number; bytes: number } {
  let packages = 0;
  let bytes = 0;
  const walk = (at: string, inNodeModules: boolean) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) {
        // A package: a directory right under node_modules (or under its @scope), not npm's own .bin and lockfile.
        const isPackage = inNodeModules && !entry.name.startsWith('.') && !entry.name.startsWith('@');
        if (isPackage) packages++;
        walk(full, entry.name === 'node_modules' || (inNodeModules && entry.name.startsWith('@')));
      } else if (entry.isFile()) bytes += lstatSync(full).size;
    }
  };
  walk(path.join(dir, 'node_modules'), true);
  return { packages, bytes };
}

const MiB = 1024 * 1024;

/** A fresh project of its own that installs `specs` (tarballs, registry names), and what that installed. */
async function freshProject(name: string, specs: string[]) {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', type: 'module', private: true }),
  );
  const installed = await run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', ...specs], {
    cwd: dir,
    timeoutMs: 300_000,
  });
  assert.equal(installed.code, 0, installed.stderr);
  const { packages, bytes } = footprint(dir);
  return { dir, packages, mib: bytes / MiB };
}

function report(what: string, installed: { packages: number; mib: number }): void {
  console.log(`installed for ${what}: ${installed.packages} packages, ${installed.mib.toFixed(1)} MiB`);
}

describe('what a project installs for the part it uses', () => {
  test('the runtime alone (@nodescale/runtime): at most 10 packages and 5 MiB, and protect() works from it, stall capture too', async () => {
    const installed = await freshProject('runtime-only', [tarballs.get('@nodescale/runtime')!.file]);
    report('the runtime alone (npm install @nodescale/runtime)', installed);
    assert.ok(installed.packages <= 10, `${installed.packages} packages`);
    assert.ok(installed.mib <= 5, `${installed.mib.toFixed(2)} MiB`);
    const script = `import http from 'node:http';
import { protect } from '@nodescale/runtime';
const server = http.createServer((req, res) => res.end('ok'));
const dir = (await import('node:fs')).mkdtempSync((await import('node:os')).tmpdir() + '/nodescale-pkg-stall-');
const runtime = protect(server, { postMortem: false, shutdown: false, stall: { dir, thresholdMs: 200 }, logger: (level, message) => console.error(level, message) });
setTimeout(() => { console.error('no stall reported within 20 s'); process.exit(3); }, 20000).unref();
server.listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const metrics = await (await fetch(base + '/metrics')).text();
  const { nodescaleFastify } = await import('@nodescale/runtime/fastify');
  // Stall capture's watchdog is a worker thread's file of the package: it is there, and catches a held loop.
  const stalled = new Promise((resolve) => runtime.once('stall', resolve));
  setTimeout(function holdTheLoop() { const end = Date.now() + 1000; while (Date.now() < end); }, 300);
  const stall = await stalled;
  console.log((await fetch(base + '/healthz')).status, /nodejs_eventloop_lag_seconds/.test(metrics), typeof nodescaleFastify, stall.capture.stack[0].function, stall.capture.profile?.top[0]?.function);
  runtime.close();
  server.close();
  (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
});`;
    const ran = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: installed.dir });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, '200 true function holdTheLoop holdTheLoop\n');
    // Its declarations type-check in a project that has no fastify (the adapter's types are in their own entry).
    const typescript = await run(
      NPM,
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '@types/node@24', 'typescript@6'],
      { cwd: installed.dir, timeoutMs: 300_000 },
    );
    assert.equal(typescript.code, 0, typescript.stderr);
    writeFileSync(
      path.join(installed.dir, 'consumer.ts'),
      `import { protect, type RuntimeOptions } from '@nodescale/runtime';\n` +
        `const options: RuntimeOptions = { overload: { maxEventLoopDelayMs: 200 } };\n` +
        `export const runtime = protect(await import('node:http').then((http) => http.createServer()), options);\n`,
    );
    const tsc = await run(
      process.execPath,
      [
        path.join(installed.dir, 'node_modules/typescript/bin/tsc'),
        ...['--module', 'nodenext', '--target', 'es2024', '--strict', '--noEmit', '--types', 'node', 'consumer.ts'],
      ],
      { cwd: installed.dir },
    );
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
  });

  test('compute (@nodescale/compute): the pool alone, then amqplib added for the amqp transport; without it, one line naming it', async () => {
    const installed = await freshProject('compute-only', [tarballs.get('@nodescale/compute')!.file]);
    report('compute with the worker-thread pool (npm install @nodescale/compute)', installed);
    writeFileSync(path.join(installed.dir, 'tasks.mjs'), TASKS);
    const script = `import { createCompute } from '@nodescale/compute';
const pool = await createCompute({ transport: 'pool', threads: 1, tasks: new URL('./tasks.mjs', import.meta.url) });
console.log(await pool.call('square', 7));
await pool.close();
try {
  await createCompute({ transport: 'amqp', url: 'amqp://127.0.0.1:1', tasks: new URL('./tasks.mjs', import.meta.url) });
} catch (error) { console.log(error.code + ': ' + error.message); }`;
    const pool = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: installed.dir });
    assert.equal(pool.code, 0, pool.stderr);
    assert.match(pool.stdout, /^49\nNS_ERR_MISSING_PACKAGE: .*needs the amqplib package.*npm install amqplib\n$/);

    const added = await run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', 'amqplib@2'], {
      cwd: installed.dir,
      timeoutMs: 300_000,
    });
    assert.equal(added.code, 0, added.stderr);
    const { packages, bytes } = footprint(installed.dir);
    report('compute with amqp (npm install @nodescale/compute amqplib)', { packages, mib: bytes / MiB });
    // With amqplib there, the amqp transport gets as far as the broker: nothing listens on port 1.
    const amqp = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: installed.dir });
    assert.equal(amqp.code, 0, amqp.stderr);
    assert.match(amqp.stdout, /^49\nNS_ERR_COMPUTE_UNAVAILABLE: /);
  });

  test('the whole CLI (nodescale), which npx runs in one command', async () => {
    const installed = await freshProject('cli-only', [tarball.file]);
    report('the whole CLI (npm install nodescale)', installed);
    const help = await run('npx', ['--no-install', 'nodescale', '--help'], { cwd: installed.dir });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: nodescale <command>/);

    // The dashboard's page and uPlot come from the installed package, not from the clone.
    writeFileSync(
      path.join(installed.dir, 'app.mjs'),
      "import http from 'node:http'; http.createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1');\n",
    );
    const urls: Record<string, string> = {};
    const announcements = await listenForAnnouncements((a) => (urls[a.service] = a.url));
    const supervisor = spawn(
      path.join(installed.dir, 'node_modules', '.bin', 'nodescale'),
      ['run', 'app.mjs', '-w', '1', '--name', `pkg-${process.pid}`, '--dashboard', '0'],
      { cwd: installed.dir, env: { ...process.env, NODE_OPTIONS: '', ...announcements.env }, stdio: 'ignore' },
    );
    try {
      const deadline = Date.now() + 30_000;
      while (urls.dashboard === undefined && supervisor.exitCode === null && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(urls.dashboard, 'the dashboard listens');
      for (const asset of ['', 'assets/dashboard.js', 'assets/uPlot.iife.min.js', 'assets/uPlot.min.css'])
        assert.equal((await fetch(`${urls.dashboard}${asset}`)).status, 200, asset);
    } finally {
      supervisor.kill('SIGTERM');
      if (supervisor.exitCode === null) await once(supervisor, 'exit');
      announcements.close();
    }
  });

  test('the light packages hold their part and nothing of the CLI', () => {
    const runtime = tarballs.get('@nodescale/runtime')!.files;
    const compute = tarballs.get('@nodescale/compute')!.files;
    for (const file of [
      'dist/runtime/index.js',
      'dist/runtime/index.d.ts',
      'dist/errors.js',
      'package.json',
      'LICENSE',
    ])
      assert.ok(runtime.includes(file), `${file} is not in @nodescale/runtime`);
    for (const file of ['dist/compute/index.js', 'dist/compute/pool-worker.js', 'dist/compute/amqp.js', 'LICENSE'])
      assert.ok(compute.includes(file), `${file} is not in @nodescale/compute`);
    const strays = [...runtime, ...compute].filter((file) =>
      /^(src|test|bench|docs)\/|dist\/(cli|loadtest|tagger|hello|supervisor|corpus)\//.test(file),
    );
    assert.deepEqual(strays, []);
  });

  test("the light packages' manifests agree with nodescale's, and declare every package their code imports", () => {
    const manifest = (dir: string) =>
      JSON.parse(readFileSync(path.join(REPO, dir, 'package.json'), 'utf8')) as {
        version: string;
        engines: { node: string };
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
    const root = manifest('.');
    for (const dir of ['packages/runtime', 'packages/compute']) {
      const light = manifest(dir);
      assert.equal(light.version, root.version, dir);
      assert.deepEqual(light.engines, root.engines, dir);
      const declared = { ...light.dependencies, ...light.peerDependencies };
      // The same range as nodescale's (a peer's may be wider: it is the user's to choose).
      for (const [name, range] of Object.entries(light.dependencies ?? {}))
        assert.equal(range, root.dependencies?.[name], `${dir}: ${name}`);
      // Every bare specifier in the compiled code (static or dynamic import): declared, or it fails in a user's project.
      const imported = new Set<string>();
      for (const file of tarballs.get(`@nodescale/${path.basename(dir)}`)!.files.filter((f) => f.endsWith('.js'))) {
        const code = readFileSync(path.join(REPO, dir, file), 'utf8');
        for (const [, specifier] of code.matchAll(/(?:from |import\()'([^'.][^']*)'/g)) {
          if (specifier!.startsWith('node:')) continue;
          imported.add(
            specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!,
          );
        }
      }
      assert.deepEqual(
        [...imported].filter((name) => !(name in declared)),
        [],
        `${dir} imports undeclared packages`,
      );
    }
  });
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
      // The Redis store's Lua, beside its compiled loader (tsc copies no .lua: the build does).
      'dist/tagger/lua/retag.lua',
      // The dashboard's page, beside its compiled server (likewise copied by the build).
      'dist/dashboard/assets/index.html',
      'dist/dashboard/assets/dashboard.js',
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
