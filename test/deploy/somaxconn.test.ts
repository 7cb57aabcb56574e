/**
 * The talk's somaxconn table, reproduced: in a network namespace this test makes (somaxconn is per namespace), a hello
 * server and `nodescale bench -c 1000` with net.core.somaxconn 16, then 1024. doctor flags the first and passes the
 * second; the runs' figures are printed (`npm run bench -- somaxconn` makes the whole table, the talk's four rows;
 * docs/talk-2016-figures.md has them beside the talk's). Needs root and `ip netns`; the namespace and every process
 * are removed, pass or fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runAtSomaxconn } from '../../bench/somaxconn.ts';
import { createNamespace, namespacesUnavailable } from '../../src/servers/netns.ts';

test(
  'somaxconn 16 drops connections that 1024 takes; doctor flags the first and passes the second',
  { skip: namespacesUnavailable() ?? false },
  async (t) => {
    const ns = createNamespace(`ns-somax-${process.pid}`);
    t.after(() => ns.remove());
    const low = await runAtSomaxconn(ns, 16, 1000, 3);
    t.diagnostic(`somaxconn 16: ${JSON.stringify(low)}`);
    const high = await runAtSomaxconn(ns, 1024, 1000, 3);
    t.diagnostic(`somaxconn 1024: ${JSON.stringify(high)}`);
    assert.equal(low.doctor, 'fail');
    assert.equal(high.doctor, 'ok');
    // 1000 connections at once through an accept queue of 16: some never get in within the bench's timeout; through
    // one of 1024, fewer. (None, on a quiet machine; beside busy loops and other tests' brokers a starved server
    // accepts too slowly for some even at 1024: the claim is the comparison, never a count.)
    assert.ok(low.neverIn > 0, JSON.stringify(low));
    assert.ok(high.neverIn < low.neverIn, JSON.stringify({ low, high }));
  },
);
