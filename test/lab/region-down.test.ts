/**
 * A whole region cut off, behind round-robin DNS: the lab's name still answers with both regions' balancers (DNS
 * has no health checks), so a client that connects to the address it is given fails when that is the dead region's;
 * a Node client given every address (`lookup` with all of them, `autoSelectFamily`) tries the next one after 250 ms
 * and never fails. Measured on 100 new clients of each kind; then the record changes (the dead region's balancer
 * taken out) and new clients fail no more. Root only: skipped, saying why, where namespaces cannot
 * be made. Everything made is removed, pass or fail.
 */
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import type { LookupFunction } from 'node:net';
import { test } from 'node:test';
import { namespacesUnavailable } from '../../src/servers/netns.ts';
import { smallFleet } from '../helpers/lab.ts';

const unavailable = namespacesUnavailable();

/** GET http://name/readyz, connecting as `lookup` says, within 2 s: true on a 200. */
function get(name: string, lookup: LookupFunction, autoSelectFamily: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    // autoSelectFamily reaches net.connect (agent: false: a connection of its own); @types/node leaves it out here.
    const options = { host: name, path: '/readyz', lookup, autoSelectFamily, agent: false, timeout: 2_000 };
    const request = http.get(options as http.RequestOptions, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(false));
  });
}

test(
  'a region cut off behind round-robin DNS: clients given one address fail when it is the dead one; Node given every address fails over',
  { skip: unavailable ?? false, timeout: 240_000 },
  async (t) => {
    const fleet = await smallFleet(t);
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    resolver.setServers([fleet.service.dns]);
    const answers = async () => resolver.resolve4(fleet.service.name);
    assert.deepEqual((await answers()).sort(), [...fleet.service.balancers].sort());

    // A client that takes the first address of each answer (what a resolver library handing one address, or a
    // client that never tries another, does); and Node given them all.
    const first: LookupFunction = (_host, options, callback) => {
      void answers().then(
        (list) => (options.all ? callback(null, [{ address: list[0]!, family: 4 }]) : callback(null, list[0]!, 4)),
        (error: NodeJS.ErrnoException) => callback(error, '', 4),
      );
    };
    const every: LookupFunction = (_host, options, callback) => {
      void answers().then(
        (list) =>
          options.all
            ? callback(
                null,
                list.map((address) => ({ address, family: 4 })),
              )
            : callback(null, list[0]!, 4),
        (error: NodeJS.ErrnoException) => callback(error, '', 4),
      );
    };
    const clients = async (lookup: LookupFunction, autoSelectFamily: boolean) => {
      let failed = 0;
      // Ten at a time: new clients arriving, each resolving the name itself.
      for (let round = 0; round < 10; round++) {
        const outcomes = await Promise.all(
          Array.from({ length: 10 }, () => get(fleet.service.name, lookup, autoSelectFamily)),
        );
        failed += outcomes.filter((ok) => !ok).length;
      }
      return failed;
    };
    assert.equal(await clients(first, false), 0, 'with both regions up, every client is answered');

    const done = await fleet.fault('partition', 'region2');
    assert.match(done, /cut r2-lb, r2-wan, r2-api1, r2-compute1 off the network/);
    // DNS still hands out the dead region's balancer.
    assert.deepEqual((await answers()).sort(), [...fleet.service.balancers].sort());
    const naive = await clients(first, false);
    const started = Date.now();
    const failover = await clients(every, true);
    t.diagnostic(
      `region 2 cut off: ${naive} of 100 new clients that take one address failed; ${failover} of 100 Node clients ` +
        `given every address (autoSelectFamily) failed (100 in ${Date.now() - started} ms)`,
    );
    // The record changes (the dead region's balancer taken out): new clients resolve the live region only.
    const changed = await fleet.fault('dns-out', 'region2');
    assert.match(changed, /tagger\.lab now answers 198\.18\.\d+\.\d+ \(region2's balancer taken out/);
    assert.deepEqual(await answers(), [fleet.service.balancers[0]]);
    const afterChange = await clients(first, false);
    t.diagnostic(`after the record changed: ${afterChange} of 100 new clients that take one address failed`);
    assert.equal(afterChange, 0);
    await assert.rejects(fleet.fault('dns-out', 'region1'), /would answer with no balancer/);
    assert.ok(naive > 0, 'a client given the dead region fails: DNS has no health check');
    assert.ok(naive < 100, 'and one given the live region does not');
    assert.equal(failover, 0);
  },
);
