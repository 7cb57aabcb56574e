/**
 * The registry of transports: one line each. A transport is its definition (contract.ts: options, defaults,
 * checks, and the implementation loaded on first use), so adding one is adding its files and a line here.
 */
import type { AmqpOptions } from './amqp-options.ts';
import { AMQP_TRANSPORT } from './amqp-transport.ts';
import type { CommonComputeOptions, TransportDefinition } from './contract.ts';
import { INLINE_TRANSPORT } from './inline-transport.ts';
import { invalidOption } from '../errors.ts';
import type { PoolOptions } from './pool-options.ts';
import { POOL_TRANSPORT } from './pool-transport.ts';

const TRANSPORTS: ReadonlyMap<string, TransportDefinition> = new Map(
  [INLINE_TRANSPORT, POOL_TRANSPORT, AMQP_TRANSPORT].map((t) => [t.name, t as TransportDefinition]),
);

/** Every transport's options, flat: each takes the common ones and its own (createCompute refuses the others). */
export interface ComputeOptions extends CommonComputeOptions, PoolOptions, AmqpOptions {}

export const TRANSPORT_NAMES: readonly string[] = [...TRANSPORTS.keys()];

/** The transport of that name; any other is NS_ERR_INVALID_OPTION naming `option` ('transport', '--compute'). */
export function transportNamed(name: unknown, option = 'transport'): TransportDefinition {
  const transport = typeof name === 'string' ? TRANSPORTS.get(name) : undefined;
  if (transport === undefined)
    throw invalidOption(option, `${TRANSPORT_NAMES.slice(0, -1).join(', ')} or ${TRANSPORT_NAMES.at(-1)}`, name);
  return transport;
}

/** The transports that have an option of that name (to say where an option given to another one belongs). */
export function transportsWith(option: string): string[] {
  return [...TRANSPORTS.values()].filter((t) => t.optionNames.includes(option)).map((t) => t.name);
}
