import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findKnee, fitUsl, powerKnee, uslThroughput } from '../../src/loadtest/knee.ts';

const LEVELS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

function curve(truth: { lambda: number; sigma: number; kappa: number }, noise = 0) {
  return LEVELS.map((n, i) => {
    const throughput = uslThroughput(truth, n) * (1 + noise * Math.sin(i * 2.3));
    return { concurrency: n, throughput, latencyMs: (n / throughput) * 1000 };
  });
}

test('the USL fit recovers σ, κ and the peak concurrency of a known curve', () => {
  const truth = { lambda: 1000, sigma: 0.05, kappa: 0.0002 };
  const fit = fitUsl(curve(truth, 0.01))!;
  const peak = Math.sqrt((1 - truth.sigma) / truth.kappa);
  assert.ok(Math.abs(fit.sigma - truth.sigma) < 0.01, `σ ${fit.sigma}`);
  assert.ok(Math.abs(fit.kappa - truth.kappa) / truth.kappa < 0.1, `κ ${fit.kappa}`);
  assert.ok(Math.abs(fit.peakConcurrency! - peak) / peak < 0.05, `N* ${fit.peakConcurrency} vs ${peak}`);
  assert.ok(fit.r2 > 0.99);
  assert.ok(Math.abs(fit.peakThroughput! - uslThroughput(fit, fit.peakConcurrency!)) < 1e-6);
});

test('linear scaling has no peak; a saturated curve is all contention', () => {
  const linear = fitUsl(LEVELS.map((n) => ({ concurrency: n, throughput: 100 * n, latencyMs: 10 })))!;
  assert.equal(linear.kappa, 0);
  assert.equal(linear.peakConcurrency, null);
  assert.ok(Math.abs(linear.lambda - 100) < 1e-6);
  const flat = fitUsl(LEVELS.map((n) => ({ concurrency: n, throughput: 5000, latencyMs: n / 5 })))!;
  assert.ok(flat.sigma > 0.99);
});

test('the power knee is the level with the most throughput per unit of latency', () => {
  const points = [
    { concurrency: 1, throughput: 1000, latencyMs: 1 },
    { concurrency: 2, throughput: 1900, latencyMs: 1.05 },
    { concurrency: 4, throughput: 2400, latencyMs: 1.7 },
    { concurrency: 8, throughput: 2500, latencyMs: 3.2 },
  ];
  const knee = powerKnee(points)!;
  assert.equal(knee.index, 1);
  assert.equal(knee.concurrency, 2);
  assert.ok(Math.abs(knee.power - 1900 / 0.00105) < 1e-6);
});

test('fewer than three levels: the power knee still, the USL skipped with a reason', () => {
  const knee = findKnee(curve({ lambda: 10, sigma: 0.1, kappa: 0.01 }).slice(0, 2));
  assert.notEqual(knee.power, null);
  assert.equal(knee.usl, null);
  assert.match(knee.uslSkipped!, /at least three levels/);
});
