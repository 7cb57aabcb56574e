/**
 * The bare RPC loop of three AMQP clients, side by side against one private RabbitMQ: which client the amqp transport
 * is built on (docs/compute.md). Each client runs the same thing: an echo service on its own connection (manual ack,
 * prefetch 64) and a caller on another, direct reply-to, no publisher confirms, a 100-byte body, k calls in flight.
 *
 *   npm run bench -- amqp-clients
 */
import { randomBytes } from 'node:crypto';
import { startRabbitMq } from '../src/servers/rabbitmq.ts';
import { median } from './lib.ts';

type QueueType = 'classic' | 'quorum';

interface Rpc {
  /** One call: resolves with the reply's body. */
  call(body: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * `persistent`: the caller's messages are persistent, as the amqp transport's are; `wireDeadline`: they carry the
 * transport's deadline as it sends it (a per-message TTL, `expiration`, and two headers) — amqplib only.
 */
type ClientSetup = (
  url: string,
  queue: string,
  type: QueueType,
  persistent?: boolean,
  wireDeadline?: boolean,
) => Promise<Rpc>;

const REPLY_TO = 'amq.rabbitmq.reply-to';

interface CloudMessage {
  body: Uint8Array | null;
  properties: { replyTo?: string; correlationId?: string };
  ack(): Promise<void>;
}
interface RabbitClientMessage {
  body: unknown;
  replyTo?: string;
  correlationId?: string;
  deliveryTag: number;
}
const queueArgs = (type: QueueType) => ({ 'x-queue-type': type });

/** Correlation of replies to calls, shared by the three setups. */
function pending() {
  const waiting = new Map<string, (body: Buffer) => void>();
  let next = 0;
  return {
    add(): [string, Promise<Buffer>] {
      const id = String(++next);
      return [id, new Promise<Buffer>((resolve) => waiting.set(id, resolve))];
    },
    settle(id: string | undefined, body: Buffer) {
      if (id === undefined) return;
      waiting.get(id)?.(body);
      waiting.delete(id);
    },
  };
}

const amqplib: ClientSetup = async (url, queue, type, persistent = false, wireDeadline = false) => {
  const { connect } = await import('amqplib');
  const serverConnection = await connect(url, { noDelay: true });
  const server = await serverConnection.createChannel();
  await server.assertQueue(queue, { durable: true, arguments: queueArgs(type) });
  await server.prefetch(64);
  await server.consume(queue, (message) => {
    if (message === null) return;
    server.sendToQueue(message.properties.replyTo, message.content, {
      correlationId: message.properties.correlationId,
    });
    server.ack(message);
  });
  const clientConnection = await connect(url, { noDelay: true });
  const client = await clientConnection.createChannel();
  const calls = pending();
  await client.consume(
    REPLY_TO,
    (message) => message && calls.settle(message.properties.correlationId, message.content),
    { noAck: true },
  );
  return {
    call(body) {
      const [correlationId, reply] = calls.add();
      const deadline = wireDeadline
        ? {
            contentType: 'application/json',
            expiration: '30000',
            headers: { 'x-nodescale-remaining-ms': 30_000, 'x-nodescale-deadline': Date.now() + 30_000 },
          }
        : {};
      client.sendToQueue(queue, body, { correlationId, replyTo: REPLY_TO, persistent, ...deadline });
      return reply;
    },
    async close() {
      await clientConnection.close();
      await serverConnection.close();
    },
  };
};

/**
 * The two clients we compare with live in bench/node_modules only (installed by `npm run bench`): loaded by a name
 * the type checker does not resolve, so that a clone without them still type-checks. Typed by what is used here.
 */
export const load = (name: string): Promise<any> => import(name); // eslint-disable-line @typescript-eslint/no-explicit-any

const cloudamqp: ClientSetup = async (url, queue, type) => {
  const { AMQPClient } = await load('@cloudamqp/amqp-client');
  const open = async () => {
    const client = new AMQPClient(url, { noDelay: true } as never);
    return client.connect();
  };
  const serverConnection = await open();
  const server = await serverConnection.channel();
  await server.queueDeclare(queue, { durable: true }, queueArgs(type));
  await server.basicQos(64);
  await server.basicConsume(queue, { noAck: false }, async (message: CloudMessage) => {
    await server.basicPublish('', message.properties.replyTo!, message.body, {
      correlationId: message.properties.correlationId,
    });
    await message.ack();
  });
  const clientConnection = await open();
  const client = await clientConnection.channel();
  const calls = pending();
  await client.basicConsume(REPLY_TO, { noAck: true }, (message: CloudMessage) =>
    calls.settle(message.properties.correlationId, Buffer.from(message.body ?? [])),
  );
  return {
    call(body) {
      const [correlationId, reply] = calls.add();
      void client.basicPublish('', queue, body, { correlationId, replyTo: REPLY_TO });
      return reply;
    },
    async close() {
      await clientConnection.close();
      await serverConnection.close();
    },
  };
};

const rabbitmqClient: ClientSetup = async (url, queue, type) => {
  const { Connection } = await load('rabbitmq-client');
  const connection = new Connection({ url, noDelay: true });
  await connection.queueDeclare({ queue, durable: true, arguments: queueArgs(type) });
  const server = await connection.acquire();
  await server.basicQos({ prefetchCount: 64 });
  await server.basicConsume({ queue }, (message: RabbitClientMessage) => {
    void server.basicPublish({ routingKey: message.replyTo!, correlationId: message.correlationId }, message.body);
    server.basicAck({ deliveryTag: message.deliveryTag });
  });
  const callerConnection = new Connection({ url, noDelay: true });
  const rpc = callerConnection.createRPCClient({ confirm: false, timeout: 30_000 });
  return {
    call: async (body) => ((await rpc.send(queue, body)) as RabbitClientMessage).body as Buffer,
    async close() {
      await rpc.close();
      await server.close();
      await callerConnection.close();
      await connection.close();
    },
  };
};

export const CLIENTS: Record<string, ClientSetup> = {
  amqplib,
  '@cloudamqp/amqp-client': cloudamqp,
  'rabbitmq-client': rabbitmqClient,
};

/** Calls per second with `inFlight` calls outstanding for `ms`, and the median latency of a call. */
export async function rpcLoad(
  rpc: Pick<Rpc, 'call'>,
  inFlight: number,
  ms: number,
): Promise<{ perSecond: number; p50Ms: number }> {
  const body = randomBytes(50).toString('hex'); // 100 bytes
  const payload = Buffer.from(body);
  const latencies: number[] = [];
  let done = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await rpc.call(payload);
        latencies.push(performance.now() - t);
        done++;
      }
    }),
  );
  return { perSecond: done / ((performance.now() - started) / 1000), p50Ms: median(latencies) };
}

export interface ClientFigures {
  client: string;
  queue: QueueType;
  inFlight: number;
  perSecond: number;
  p50Ms: number;
}

export async function amqpClients(options: { seconds: number }): Promise<ClientFigures[]> {
  const broker = await startRabbitMq();
  const figures: ClientFigures[] = [];
  try {
    for (const type of ['classic', 'quorum'] as const) {
      for (const [name, setup] of Object.entries(CLIENTS)) {
        const rpc = await setup(broker.url, `bench-${name.replace(/\W/g, '')}-${type}`, type);
        try {
          await rpcLoad(rpc, 8, 500); // warm up
          for (const inFlight of [1, 32]) {
            const { perSecond, p50Ms } = await rpcLoad(rpc, inFlight, options.seconds * 1000);
            figures.push({ client: name, queue: type, inFlight, perSecond, p50Ms });
          }
        } finally {
          await rpc.close();
        }
      }
    }
  } finally {
    await broker.stop();
  }
  return figures;
}

if (import.meta.main) {
  const figures = await amqpClients({ seconds: Number(process.argv[2] ?? 3) });
  for (const f of figures) {
    console.log(
      `${f.queue.padEnd(8)} ${f.client.padEnd(24)} ${String(f.inFlight).padStart(2)} in flight: ${Math.round(f.perSecond).toString().padStart(6)} calls/s, p50 ${f.p50Ms.toFixed(2)} ms`,
    );
  }
}
