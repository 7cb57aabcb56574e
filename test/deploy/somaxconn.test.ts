/**
 * The talk's somaxconn table, reproduced: in a network namespace this test makes (somaxconn is per namespace), a hello
 * server and `nodescale bench -c 1000` with net.core.somaxconn 16, then 1024. doctor flags the first and passes the
 * second; the runs' figures are printed (docs/talk-2016-figures.md has them beside the talk's). Needs root and
 * `ip netns`; the namespace and every process are removed, pass or fail.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { test } from 'node:test';
import { BIN } from '../helpers/cli.ts';
import { waitUntil } from '../helpers/wait.ts';

const root = process.getuid?.() === 0;
const NS = `ns-somax-${process.pid}`;

const inNamespace = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', NS, ...args],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
    );
  });

test(
  'somaxconn 16 drops connections that 1024 takes; doctor flags the first and passes the second',
  { skip: !root && 'needs root for ip netns' },
  async (t) => {
    execFileSync('ip', ['netns', 'add', NS]);
    t.after(() => execFileSync('ip', ['netns', 'del', NS]));
    execFileSync('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
    const figures: Record<
      number,
      { requests: number; timeouts: number; connect: number; p99: number; doctor: string }
    > = {};
    for (const somaxconn of [16, 1024]) {
      execFileSync('ip', ['netns', 'exec', NS, 'sysctl', '-qw', `net.core.somaxconn=${somaxconn}`]);
      const hello = spawn('ip', ['netns', 'exec', NS, process.execPath, BIN, 'hello', 'http', '--port', '18081'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      hello.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      try {
        await waitUntil(() => /listening on/.test(out), 'the hello server listens');
        const bench = await inNamespace([
          process.execPath,
          BIN,
          'bench',
          'http://127.0.0.1:18081/',
          '-c',
          '1000',
          '-d',
          '3s',
          '--json',
        ]);
        const result = JSON.parse(bench.stdout) as {
          requests: { total: number };
          errors: { timeout: number; connect: number };
          latencyMs: { p99: number };
        };
        const doctor = await inNamespace([process.execPath, BIN, 'doctor', '--json', '-c', '1000']);
        const finding = (
          JSON.parse(doctor.stdout) as { findings: { check: string; severity: string }[] }
        ).findings.find((f) => f.check === 'net.core.somaxconn')!;
        figures[somaxconn] = {
          requests: result.requests.total,
          timeouts: result.errors.timeout,
          connect: result.errors.connect,
          p99: result.latencyMs.p99,
          doctor: finding.severity,
        };
        t.diagnostic(`somaxconn ${somaxconn}: ${JSON.stringify(figures[somaxconn])}`);
      } finally {
        hello.kill('SIGTERM');
        await new Promise((resolve) => hello.once('exit', resolve));
      }
    }
    assert.equal(figures[16]!.doctor, 'fail');
    assert.equal(figures[1024]!.doctor, 'ok');
    // 1000 connections at once through an accept queue of 16: some never get in within the bench's timeout.
    assert.ok(figures[16]!.timeouts + figures[16]!.connect > 0, JSON.stringify(figures[16]));
    assert.equal(figures[1024]!.timeouts + figures[1024]!.connect, 0, JSON.stringify(figures[1024]));
  },
);
