/** The inline transport has no options of its own; its implementation is inline.ts. */
import type { TransportDefinition } from './contract.ts';

export const INLINE_TRANSPORT: TransportDefinition = {
  name: 'inline',
  optionNames: [],
  runsTasksHere: true,
  resolve: () => ({}),
  load: async () => (await import('./inline.ts')).createInlineCompute,
};
