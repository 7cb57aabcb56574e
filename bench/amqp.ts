/**
 * The amqp compute transport against the bare RPC loop of its client (amqplib), side by side on one private
 * RabbitMQ, in one run: what the semantics (deadlines, confirms, delivery counting, a worker-thread hop) cost.
 *
 *   npm run bench -- amqp
 *
 * Each configuration: an echo of 100 bytes, calls/s at 1 and at 32 in flight, and the median latency at 1.
 * - bare: amqplib's loop (bench/amqp-clients.ts): an echo consumer on the event loop, no confirms, direct reply-to,
 *   persistent messages (as the transport's); and the same loop with the transport's deadline on the wire (a
 *   per-message TTL and two headers), which is what the broker's side of a deadline costs;
 * - ours: createCompute({ transport: 'amqp' }) and startAmqpService() (its tasks on a worker thread), confirms on
 *   and off, with the same queue type.
 */
import { startAmqpService } from '../src/compute/amqp-service.ts';
import { createCompute } from '../src/compute/compute.ts';
import { startRabbitMq } from '../src/servers/rabbitmq.ts';
import { spawn } from 'node:child_process';
import { findExecutable, freePort, terminate, waitForPort } from '../src/servers/process.ts';
import { CLIENTS, load, rpcLoad } from './amqp-clients.ts';

const TASKS = new URL('../test/fixtures/compute-tasks.ts', import.meta.url);

export interface AmqpFigures {
  queue: 'classic' | 'quorum' | 'none';
  variant: string;
  inFlight: number;
  perSecond: number;
  p50Ms: number;
}

/** One variant, warmed up, then at 1 and at 32 calls in flight for `ms` each. */
async function measureRpc(
  queue: AmqpFigures['queue'],
  variant: string,
  rpc: { call(body: Buffer): Promise<Buffer> },
  ms: number,
): Promise<AmqpFigures[]> {
  await rpcLoad(rpc, 8, 500);
  const figures: AmqpFigures[] = [];
  for (const inFlight of [1, 32]) figures.push({ queue, variant, inFlight, ...(await rpcLoad(rpc, inFlight, ms)) });
  return figures;
}

/**
 * The reference for a lightweight bus: NATS core request-reply (Debian's nats-server, the `nats` client in
 * bench/node_modules), an echo subscriber and a requester on two connections. No persistence, no acknowledgements:
 * what a bus without a broker's guarantees costs.
 */
async function natsReference(ms: number): Promise<AmqpFigures[]> {
  const binary = findExecutable('nats-server', 'nats-server', ['/usr/sbin']);
  const port = await freePort();
  const server = spawn(binary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await waitForPort(port, 10_000, () => (server.exitCode === null ? null : 'nats-server exited'));
    const { connect } = await load('nats');
    const responder = await connect({ servers: `127.0.0.1:${port}` });
    responder.subscribe('echo', {
      callback: (_error: unknown, message: { respond(data: Uint8Array): void; data: Uint8Array }) =>
        message.respond(message.data),
    });
    await responder.flush();
    const requester = await connect({ servers: `127.0.0.1:${port}`, noEcho: true });
    const rpc = {
      call: async (body: Buffer) => Buffer.from((await requester.request('echo', body, { timeout: 30_000 })).data),
    };
    const figures = await measureRpc('none', 'NATS core request-reply', rpc, ms);
    await requester.close();
    await responder.close();
    return figures;
  } finally {
    await terminate(server.pid!, 5000);
  }
}

/** What the hop to a service's worker thread costs alone: the pool transport, one thread, the same echo. */
async function threadHop(ms: number): Promise<AmqpFigures[]> {
  const pool = await createCompute({ transport: 'pool', tasks: TASKS, threads: 1 });
  try {
    const rpc = { call: async (body: Buffer) => Buffer.from(await pool.call<string>('echo', body.toString())) };
    return await measureRpc('none', 'pool thread hop, no broker', rpc, ms);
  } finally {
    await pool.close();
  }
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
      const measure = async (variant: string, rpc: { call(body: Buffer): Promise<Buffer> }) =>
        figures.push(...(await measureRpc(queue, variant, rpc, ms)));
      try {
        await measure('bare amqplib', bare);
      } finally {
        await bare.close();
      }
      const deadlined = await CLIENTS.amqplib!(broker.url, `bench.deadline.${queue}`, queue, true, true);
      try {
        await measure('bare, deadline on the wire', deadlined);
      } finally {
        await deadlined.close();
      }
      for (const confirm of [false, true]) {
        const q = `bench.ours.${queue}.${++n}`;
        const service = await startAmqpService({
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
  figures.push(...(await natsReference(ms)));
  figures.push(...(await threadHop(ms)));
  return figures;
}

if (import.meta.main) {
  for (const f of await amqpTransport({ seconds: Number(process.argv[2] ?? 3) })) {
    console.log(
      `${f.queue.padEnd(8)} ${f.variant.padEnd(28)} ${String(f.inFlight).padStart(2)} in flight: ${Math.round(f.perSecond).toString().padStart(6)} calls/s, p50 ${f.p50Ms.toFixed(2)} ms`,
    );
  }
}
