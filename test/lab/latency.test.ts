/**
 * 40 ms between regions: region 2's link to the shared tier (Redis, the brokers, the corpus) delayed by the lab's
 * relay (this kernel has no netem), and get-urls timed through each region's balancer before and after. Every
 * get-urls in region 2 reads Redis across the link, so none can take less than the round trip; region 1 does not
 * cross it. Root only: skipped, saying why, where namespaces cannot be made. Everything made is removed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { namespacesUnavailable } from '../../src/servers/netns.ts';
import { smallFleet } from '../helpers/lab.ts';

const unavailable = namespacesUnavailable();

/** `count` get-urls one after another on one keep-alive connection: each one's milliseconds, sorted. */
async function timeGetUrls(balancer: string, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get({ host: balancer, path: '/benchmark/get-urls', agent, timeout: 10_000 }, (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          })
          .on('error', reject);
      });
      assert.equal(status, 200);
      times.push(performance.now() - started);
    }
  } finally {
    agent.destroy();
  }
  return times.sort((a, b) => a - b);
}

const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const summary = (sorted: number[]) =>
  `min ${sorted[0]!.toFixed(1)} ms, p50 ${at(sorted, 0.5).toFixed(1)} ms, p99 ${at(sorted, 0.99).toFixed(1)} ms`;

test(
  '40 ms between regions: get-urls in region 2 takes the round trip more (none faster), region 1 does not cross it',
  { skip: unavailable ?? false, timeout: 240_000 },
  async (t) => {
    const fleet = await smallFleet(t);
    const [r1, r2] = fleet.service.balancers as [string, string];
    // Something to find: a page tagged in each region (get-urls asks for the corpus's benchmark tag).
    for (const balancer of [r1, r2]) {
      const response = await fetch(`http://${balancer}/benchmark/get-tags`);
      assert.equal(response.status, 200, await response.text());
    }
    const before = { r1: await timeGetUrls(r1, 200), r2: await timeGetUrls(r2, 200) };
    const done = await fleet.fault('latency', 'region2', 40);
    assert.match(done, /adds 40 ms to each round trip \(a delaying TCP relay/);
    const wan = (await fleet.status()).find((host) => host.role === 'wan')!;
    assert.equal(wan.health, 'ok, +40 ms round trip');
    const after = { r1: await timeGetUrls(r1, 200), r2: await timeGetUrls(r2, 100) };
    t.diagnostic(
      `get-urls through each region's balancer, 200 one after another (100 in region 2 after): ` +
        `region 1 before ${summary(before.r1)}, after ${summary(after.r1)}; ` +
        `region 2 before ${summary(before.r2)}, after ${summary(after.r2)}`,
    );
    // A lower bound, not a timing: a busy machine makes requests slower, never faster than the link.
    assert.ok(after.r2[0]! >= 40, `every get-urls in region 2 crosses the link: the fastest took ${after.r2[0]} ms`);
    await fleet.fault('latency', 'region2', 0);
    assert.equal((await fleet.status()).find((host) => host.role === 'wan')!.health, 'ok');
  },
);
