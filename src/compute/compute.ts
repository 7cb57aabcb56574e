/**
 * nodescale/compute: CPU-bound work moved off the API's event loop, behind one small request/response interface.
 *
 *   const compute = await createCompute({ transport: 'pool', tasks: new URL('./tasks.ts', import.meta.url) });
 *   const tags = await compute.call('extract', { html, url }, { deadlineMs: 2000 });
 *
 * A task module exports `tasks`, a record of named functions (input → output, or a promise of it). The core is this
 * file: it checks the options every transport shares, and hands the rest to the transport named (transports.ts),
 * which checks its own and is loaded on first use. `inline` runs tasks on the caller's event loop (the monolith, to
 * compare with), `pool` on a pool of worker threads (piscina), `amqp` on compute services behind a RabbitMQ broker
 * (amqp.ts; the services: amqp-service.ts, `nodescale compute-worker`). The contract they keep: contract.ts.
 */
import { channel } from 'node:diagnostics_channel';
import { CHANNELS, publish } from '../diagnostics.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import type { CallOptions, Compute, CommonComputeOptions, ResolvedCommonOptions } from './contract.ts';
import { deadline, fraction, whole } from './option-checks.ts';
import { transportNamed, transportsWith, type ComputeOptions } from './transports.ts';

export type { CallOptions, Compute, ComputeStats, Task, TaskModule } from './contract.ts';
export { TRANSPORT_NAMES, type ComputeOptions } from './transports.ts';

/** The common options resolved, and the transport's own (its resolver's result). */
export type ResolvedComputeOptions = ResolvedCommonOptions & Record<string, unknown>;

export const COMPUTE_DEFAULTS = Object.freeze({
  transport: 'pool',
  maxQueue: 256,
  deadlineMs: 30_000,
  hedgeAfter: 0.5,
});

const COMMON_NAMES = [
  'transport',
  'tasks',
  'maxQueue',
  'deadlineMs',
  'hedgeAfter',
] as const satisfies readonly (keyof CommonComputeOptions)[];

export function resolveComputeOptions(options: ComputeOptions): ResolvedComputeOptions {
  const transport = transportNamed(options.transport ?? COMPUTE_DEFAULTS.transport);
  const needsTasks = transport.runsTasksHere;
  const tasks = options.tasks instanceof URL ? options.tasks.href : (options.tasks ?? (needsTasks ? undefined : ''));
  if (typeof tasks !== 'string' || (tasks === '' && needsTasks))
    throw invalidOption('tasks', 'the URL or path of a module exporting tasks', options.tasks);
  const common: ResolvedCommonOptions = {
    transport: transport.name,
    tasks: tasks === '' || tasks.includes(':') ? tasks : new URL(tasks, `file://${process.cwd()}/`).href,
    maxQueue: whole('maxQueue', options.maxQueue, COMPUTE_DEFAULTS.maxQueue, 0),
    deadlineMs: deadline('deadlineMs', options.deadlineMs, COMPUTE_DEFAULTS.deadlineMs),
    hedgeAfter: fraction('hedgeAfter', options.hedgeAfter, COMPUTE_DEFAULTS.hedgeAfter),
  };
  return { ...common, ...transport.resolve(options as Record<string, unknown>) };
}

export async function createCompute(options: ComputeOptions): Promise<Compute> {
  const transport = transportNamed(options.transport ?? COMPUTE_DEFAULTS.transport);
  const known = [...COMMON_NAMES, ...transport.optionNames];
  // An option of another transport is no typo: say whose it is.
  for (const name of Object.keys(options)) {
    const owners = transportsWith(name);
    if (!known.includes(name) && owners.length > 0)
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `${name} is an option of the ${owners.join(' and ')} transport, not of ${transport.name}`,
      );
  }
  refuseUnknownOptions(options, known);
  const resolved = resolveComputeOptions(options);
  return observed(await (await transport.load())(resolved));
}

/**
 * The transport's compute, its calls published on CHANNELS.computeCall while someone subscribes (the dashboard
 * will): nothing is timed or built otherwise.
 */
function observed(compute: Compute): Compute {
  return {
    get transport() {
      return compute.transport;
    },
    async call<O>(task: string, input: unknown, options?: CallOptions): Promise<O> {
      if (!channel(CHANNELS.computeCall).hasSubscribers) return compute.call<O>(task, input, options);
      const started = performance.now();
      const done = (ok: boolean, code: string | null) =>
        publish(CHANNELS.computeCall, () => ({
          transport: compute.transport,
          task,
          durationMs: performance.now() - started,
          ok,
          code,
        }));
      try {
        const output = await compute.call<O>(task, input, options);
        done(true, null);
        return output;
      } catch (error) {
        done(false, (error as { code?: string }).code ?? null);
        throw error;
      }
    },
    stats: () => compute.stats(),
    close: () => compute.close(),
  };
}
