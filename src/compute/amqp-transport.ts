/** The amqp transport: compute services behind a RabbitMQ broker. Its options: amqp-options.ts. */
import { sibling } from '../module-file.ts';
import { resolveAmqpOptions, type ResolvedAmqpOptions } from './amqp-options.ts';
import type { TransportDefinition } from './contract.ts';

export const AMQP_TRANSPORT: TransportDefinition<ResolvedAmqpOptions> = {
  name: 'amqp',
  optionNames: ['url', 'tls', 'queue', 'queueType', 'maxDeliveries', 'confirm'],
  runsTasksHere: false,
  resolve: resolveAmqpOptions,
  load: async () => (await import('./amqp.ts')).createAmqpCompute,
  service: {
    optionNames: ['url', 'tls', 'queue', 'queueType', 'maxDeliveries', 'prefetch'],
    module: sibling('./amqp-service', import.meta.url),
  },
};
