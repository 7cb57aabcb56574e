/** The pool transport: worker threads in the caller's process (piscina; pool.ts). Its options: pool-options.ts. */
import type { TransportDefinition } from './contract.ts';
import { resolvePoolOptions, type ResolvedPoolOptions } from './pool-options.ts';

export const POOL_TRANSPORT: TransportDefinition<ResolvedPoolOptions> = {
  name: 'pool',
  optionNames: ['threads'],
  runsTasksHere: true,
  resolve: resolvePoolOptions,
  load: async () => (await import('./pool.ts')).createPoolCompute,
};
