/**
 * White-box tests of the supervisor's parts: the restart policy's arithmetic, the CPU count, the JSON log line. The
 * supervisor's behaviour is tested through `nodescale run` in test/supervisor/.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonOutputLine } from '../../src/cli/supervise.ts';
import { cgroupCpuLimit, usableCpus } from '../../src/supervisor/cpus.ts';
import { resolveSupervisorOptions, SUPERVISOR_DEFAULTS } from '../../src/supervisor/options.ts';
import { RESTART_DEFAULTS, RestartPolicy } from '../../src/supervisor/restart-policy.ts';

test('restart policy: the delay grows with each crash in a row, has jitter, resets when stable; a crash loop stops it', () => {
  const options = { initialMs: 100, maxMs: 1000, stableMs: 5000, maxRestarts: 5 };
  const low = new RestartPolicy(options, () => 0);
  const high = new RestartPolicy(options, () => 1);
  const delays = [0, 1, 2, 3].map(() => [low.onCrash(10), high.onCrash(10)]);
  assert.deepEqual(
    delays.map(([l]) => (l as { delayMs: number }).delayMs),
    [50, 100, 200, 400],
    'half of the doubling ceiling, at the least',
  );
  assert.deepEqual(
    delays.map(([, h]) => (h as { delayMs: number }).delayMs),
    [100, 200, 400, 800],
  );
  // A worker that stayed up past stableMs starts the count again.
  assert.equal((low.onCrash(6000) as { attempt: number }).attempt, 1);
  for (let i = 0; i < 4; i++) assert.equal(low.onCrash(10).restart, true);
  // The sixth crash in a row: give up.
  const verdict = low.onCrash(10);
  assert.equal(verdict.restart, false);
  assert.match((verdict as { reason: string }).reason, /crash loop: 6 crashes in a row, none after 5 s up/);
});

test('restart policy, defaults: an app that exits at once is given up on, however long the backoff grows', () => {
  // The clock the supervisor would see: each crash comes 50 ms after the restart the policy asked for.
  for (const random of [() => 0, () => 0.5, () => 1]) {
    const policy = new RestartPolicy(RESTART_DEFAULTS, random);
    let now = 0;
    let crashes = 0;
    for (;;) {
      crashes++;
      const decision = policy.onCrash(50);
      if (!decision.restart) break;
      now += decision.delayMs + 50;
      assert.ok(crashes < 1000, 'never given up on');
    }
    assert.equal(crashes, RESTART_DEFAULTS.maxRestarts + 1);
    const { min, max } = policy.crashLoopAfterMs();
    assert.ok(now >= min && now <= max + crashes * 50, `verdict after ${now} ms, expected ${min}–${max}`);
  }
  // Crashes an hour apart, each after a stable run, are never a loop.
  const stable = new RestartPolicy();
  for (let i = 0; i < 100; i++) assert.equal(stable.onCrash(RESTART_DEFAULTS.stableMs).restart, true);
});

test('usable CPUs honour the cgroup quota', () => {
  assert.equal(
    cgroupCpuLimit(() => '200000 100000\n'),
    2,
  );
  assert.equal(
    cgroupCpuLimit(() => 'max 100000\n'),
    null,
  );
  assert.equal(usableCpus(1.5, 8), 1);
  assert.equal(usableCpus(null, 8), 8);
  assert.equal(usableCpus(16, 4), 4);
  assert.equal(usableCpus(0.5, 4), 1);
});

test("--log-format json merges a worker's JSON log line instead of quoting it", () => {
  const line = jsonOutputLine('{"level":"info","time":"2026-01-01T00:00:00.000Z","msg":"ready","pid":1}', {
    slot: 1,
    pid: 42,
    stream: 'stderr',
  });
  assert.deepEqual(line, {
    level: 'info',
    time: '2026-01-01T00:00:00.000Z',
    msg: 'ready',
    pid: 42,
    worker: 1,
    stream: 'stderr',
  });
  const plain = jsonOutputLine('app v1 listening', { slot: 0, pid: 7, stream: 'stdout' });
  assert.deepEqual([plain.message, plain.worker, plain.pid], ['app v1 listening', 0, 7]);
  assert.equal(jsonOutputLine('{not json', { slot: 0, pid: 7, stream: 'stdout' }).message, '{not json');
});

test("the supervisor's options: the nested restart section is checked as the top is", () => {
  const app = import.meta.filename;
  assert.throws(() => resolveSupervisorOptions({ app, restart: { maxRestart: 3 } as never }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option restart.maxRestart; did you mean restart.maxRestarts?',
  });
  assert.throws(() => resolveSupervisorOptions({ app, restart: { initialMs: -1 } }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: /^restart\.initialMs must be a duration of at least 1 ms, got -1$/,
  });
  assert.throws(() => resolveSupervisorOptions({ app, restart: { initialMs: 5000, maxMs: 100 } }), {
    message: /^restart\.maxMs must be a duration of at least restart\.initialMs \(5000 ms\)/,
  });
  assert.throws(() => resolveSupervisorOptions({ app, workrs: 2 } as never), {
    message: 'unknown option workrs; did you mean workers?',
  });
  // What the CLI leaves out is the library's default.
  const resolved = resolveSupervisorOptions({ app, restart: { maxRestarts: 3 } });
  assert.deepEqual(resolved.restart, { ...RESTART_DEFAULTS, maxRestarts: 3 });
  assert.equal(resolved.graceMs, SUPERVISOR_DEFAULTS.graceMs);
});
