/**
 * `nodescale run --perf`: the workers run with V8's perf flags, their /tmp/perf-<pid>.map exists while they run and
 * is removed when the supervisor stops; where Linux perf runs here (Debian's linux-perf), `perf record` of a worker
 * blocked in `blockTheLoop` and `perf report` name that JavaScript function.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { perfMapOf } from '../../src/supervisor/perf-maps.ts';
import { startSupervised } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

const perfWorks = spawnSync('perf', ['--version']).status === 0;

test(
  "run --perf: V8 writes each worker's perf map, perf names the JavaScript function, the maps go at stop",
  { timeout: 60_000 },
  async (t) => {
    const name = `perf-${process.pid}`;
    const run = await startSupervised(t, name, ['-w', '1', '--perf']);
    const workers = execFileSync('pgrep', ['-P', String(run.child.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    const pid = workers.find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--perf-basic-prof'));
    assert.ok(pid, 'a worker runs with --perf-basic-prof');
    assert.ok(existsSync(perfMapOf(pid)), 'its perf map is written');

    if (perfWorks) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-perf-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const data = path.join(dir, 'perf.data');
      // perf first (it takes a moment to attach), then the request that blocks the worker for 2 s.
      const perf = spawn('perf', ['record', '-F', '199', '-g', '-p', String(pid), '-o', data, '--', 'sleep', '2.5']);
      let perfErr = '';
      perf.stderr.on('data', (chunk: Buffer) => (perfErr += chunk));
      const record = {
        status: await new Promise<number | null>((resolve) => {
          perf.once('exit', resolve);
          setTimeout(
            () =>
              void fetch(`${run.app}block`)
                .then((response) => response.text())
                .catch(() => {}),
            400,
          );
        }),
        stderr: perfErr,
      };
      if (record.status === 0) {
        const report = execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children'], {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
        });
        assert.match(
          report,
          /JS:\*?~?\^?blockTheLoop .*supervised-app\.ts/,
          'perf report names the JavaScript function',
        );
      } else t.diagnostic(`perf record could not run here: ${record.stderr.trim().slice(0, 300)}`);
    } else t.diagnostic('perf is not installed (apt-get install linux-perf): the perf report part is skipped');

    run.child.kill('SIGTERM');
    await waitUntil(() => run.child.exitCode !== null, 'the supervisor stopped', 20_000);
    assert.equal(existsSync(perfMapOf(pid)), false, 'the map is removed at stop');
  },
);
