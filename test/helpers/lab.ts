/**
 * The smallest fleet of the lab for a test: two regions, one API and one compute host each, one broker node, one
 * Redis; stopped (everything removed) after the test, pass or fail.
 */
import type { TestContext } from 'node:test';
import { startFleet, type Fleet } from '../../src/lab/fleet.ts';

export async function smallFleet(t: TestContext): Promise<Fleet> {
  const made: { fleet?: Fleet } = {};
  t.after(() => made.fleet?.stop());
  return (made.fleet = await startFleet({ regions: 2, apiHosts: 1, computeHosts: 1, brokerNodes: 1, redisNodes: 1 }));
}
