/**
 * `nodescale run --watch`: a change reloads the app once (debounced) through the health-gated reload; a version with
 * a syntax error leaves the old one serving and says why in one line; a change under node_modules or an ignored
 * pattern reloads nothing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { globToRegExp, isIgnored } from '../../src/supervisor/watch.ts';
import { startRun } from '../helpers/supervisor.ts';
import { waitUntil } from '../helpers/wait.ts';

const app = (version: string) => `import http from 'node:http';
http.createServer((req, res) => res.end('${version}')).listen(Number(process.env.APP_PORT), '127.0.0.1');
`;

test('ignore patterns: ** across directories, * within one, node_modules and .git always', () => {
  const patterns = ['*.test.ts', 'dist/**', 'docs/**/*.md'].map(globToRegExp);
  assert.ok(isIgnored('src/a.test.ts', patterns), 'a name matches anywhere');
  assert.ok(isIgnored('dist/x/y.js', patterns));
  assert.ok(isIgnored('docs/a.md', patterns) && isIgnored('docs/x/y/a.md', patterns));
  assert.ok(isIgnored('node_modules/x/index.js', []) && isIgnored('.git/HEAD', []));
  assert.ok(!isIgnored('src/server.ts', patterns));
  assert.ok(!isIgnored('distant/a.js', patterns));
});

test('watch: a change reloads once; a syntax error keeps the old version serving; ignored changes reload nothing', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-watch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'server.mjs');
  writeFileSync(file, app('v1'));
  mkdirSync(path.join(dir, 'node_modules'));
  mkdirSync(path.join(dir, 'lib', 'deep'), { recursive: true });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const run = startRun(t, ['-w', '2', '--watch', '--watch-ignore', '*.tmp'], { APP_PORT: String(port) }, file);
  await run.waitFor(/2 worker\(s\) ready/);
  await run.waitFor(/watch: .* \(a change reloads\)/);
  const body = () =>
    fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.text(),
      () => 'down',
    );
  assert.equal(await body(), 'v1');

  // Three writes in a row are one change.
  for (const v of ['v2-draft', 'v2-draft2', 'v2']) writeFileSync(file, app(v));
  await run.waitFor(/watch: reloaded, 2 worker\(s\) on the new version/);
  assert.equal(await body(), 'v2');
  assert.equal(run.stderr().match(/watch: .* changed: reloading/g)?.length, 1, 'one reload for the burst');

  writeFileSync(file, `${app('v3')}\nconst = ;\n`);
  const failed = await run.waitFor(/watch: the new version did not start; the old one keeps serving: (.*)/);
  assert.match(failed[1]!, /SyntaxError/, 'the reason, in the line');
  for (let i = 0; i < 5; i++) assert.equal(await body(), 'v2', 'the old version answers');

  const reloads = run.stderr().match(/changed: reloading/g)!.length;
  writeFileSync(path.join(dir, 'node_modules', 'dep.js'), 'x');
  writeFileSync(path.join(dir, 'scratch.tmp'), 'x');
  // Then a change that counts: only it reloads.
  writeFileSync(file, app('v4'));
  await run.waitFor(/watch: reloaded, 2 worker\(s\) on the new version[^]*watch: reloaded, 2 worker\(s\)/);
  await waitUntil(async () => (await body()) === 'v4', 'v4 answers');
  assert.equal(run.stderr().match(/changed: reloading/g)!.length, reloads + 1, 'node_modules and *.tmp did not count');
  assert.doesNotMatch(run.stderr(), /node_modules|scratch\.tmp changed/);
  // A file deep in a subdirectory counts.
  writeFileSync(path.join(dir, 'lib', 'deep', 'util.mjs'), 'export {};');
  await run.waitFor(/lib\/deep\/util\.mjs changed: reloading/);
  run.kill('SIGTERM');
  await run.exited;
});
