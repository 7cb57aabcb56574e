/**
 * The amqp compute transport against the bare RPC loop of its client (amqplib), side by side on one private
 * RabbitMQ, in one run: what the semantics (deadlines, confirms, delivery counting, a worker-thread hop) cost.
 *
 *   npm run bench -- amqp
 *
 * Each configuration: an echo of 100 bytes, calls/s at 1 and at 32 in flight, and the median latency at 1.
 * - bare: amqplib's loop (bench/amqp-clients.ts): an echo consumer on the event loop, no confirms, direct reply-to,
 *   persistent messages (as the transport's);
 * - ours: createCompute({ transport: 'amqp' }) and startComputeService() (its tasks on a worker thread), confirms on
 *   and off, with the same queue type.
 */
import { startComputeService } from '../src/compute/amqp-service.ts';
import { createCompute } from '../src/compute/compute.ts';
import { startRabbitMq } from '../src/servers/rabbitmq.ts';
import { CLIENTS, rpcLoad } from './amqp-clients.ts';

const TASKS = new URL('../test/fixtures/compute-tasks.ts', import.meta.url);

export interface AmqpFigures {
  queue: 'classic' | 'quorum';
  variant: string;
  inFlight: number;
  perSecond: number;
  p50Ms: number;
}

export async function amqpTransport(options: { seconds: number }): Promise<AmqpFigures[]> {
  const broker = await startRabbitMq();
  const figures: AmqpFigures[] = [];
  const ms = options.seconds * 1000;
  let n = 0;
  try {
    for (const queue of ['classic', 'quorum'] as const) {
      // The same message settings as the transport's: persistent, on the same queue type.
      const bare = await CLIENTS.amqplib!(broker.url, `bench.bare.${queue}`, queue, true);
      const measure = async (variant: string, rpc: { call(body: Buffer): Promise<Buffer> }) => {
        await rpcLoad(rpc, 8, 500);
        for (const inFlight of [1, 32])
          figures.push({ queue, variant, inFlight, ...(await rpcLoad(rpc, inFlight, ms)) });
      };
      try {
        await measure('bare amqplib', bare);
      } finally {
        await bare.close();
      }
      for (const confirm of [false, true]) {
        const q = `bench.ours.${queue}.${++n}`;
        const service = await startComputeService({
          url: broker.url,
          tasks: TASKS,
          queue: q,
          queueType: queue,
          threads: 1,
          prefetch: 64,
        });
        const compute = await createCompute({
          transport: 'amqp',
          url: broker.url,
          queue: q,
          queueType: queue,
          confirm,
        });
        try {
          await measure(`nodescale, confirms ${confirm ? 'on' : 'off'}`, {
            call: async (body) => Buffer.from((await compute.call<string>('echo', body.toString())) ?? ''),
          });
        } finally {
          await compute.close();
          await service.stop();
        }
      }
    }
  } finally {
    await broker.stop();
  }
  return figures;
}

if (import.meta.main) {
  for (const f of await amqpTransport({ seconds: Number(process.argv[2] ?? 3) })) {
    console.log(
      `${f.queue.padEnd(8)} ${f.variant.padEnd(26)} ${String(f.inFlight).padStart(2)} in flight: ${Math.round(f.perSecond).toString().padStart(6)} calls/s, p50 ${f.p50Ms.toFixed(2)} ms`,
    );
  }
}
