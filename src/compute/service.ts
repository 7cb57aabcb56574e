/**
 * The service side of a transport whose tasks run in other processes (`nodescale compute-worker`): what a service
 * is, and how one is started for a transport named in the registry. Only the CLI's compute-worker loads this (with
 * prom-client, for the service's metrics); an API process that calls tasks never does.
 */
import type { Registry } from 'prom-client';
import { NodescaleError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import { TRANSPORT_NAMES, transportNamed } from './transports.ts';

/** A compute service: the side of a transport that takes tasks from other processes and runs them here. */
export interface ComputeService {
  /** True while it takes tasks (consumes its queue). */
  readonly consuming: boolean;
  /** Where it takes them from, without secrets (amqp: the broker's URL, redacted, and the queue). */
  readonly address: string;
  readonly registry: Registry;
  stats(): ComputeServiceStats;
  /** Resolves once it takes tasks (again, after a reconnection). */
  whenConsuming(): Promise<void>;
  /** Graceful: no new tasks, what it holds is finished, answered and acknowledged; then it closes. */
  stop(): Promise<void>;
}

export interface ComputeServiceStats {
  consuming: boolean;
  inFlight: number;
  completed: number;
  failed: number;
  expired: number;
  redelivered: number;
  deadLettered: number;
  /** amqp: the broker node it is connected to (its URL without the password); null while it is not. */
  broker?: string | null;
}

/** What every service takes, whatever its transport; the transport's own options come beside these. */
export interface ServiceHostOptions {
  /** The module exporting `tasks` (URL or path). */
  tasks: URL | string;
  /** Worker threads. Default: usable CPUs − 1, at least 1. */
  threads?: number;
  /** Where the compute metrics are registered (a registry of its own by default). */
  registry?: Registry;
  log?: Logger;
  /** Told each time it starts or stops taking tasks (a lost broker, and when it is back). */
  onConsuming?: (consuming: boolean) => void;
}

/** What a transport's service module exports (the file its definition's `service.module` names). */
export interface ServiceModule {
  startService(options: ServiceHostOptions & Record<string, unknown>): Promise<ComputeService>;
}

const HOST_NAMES = [
  'tasks',
  'threads',
  'registry',
  'log',
  'onConsuming',
] as const satisfies readonly (keyof ServiceHostOptions)[];

/**
 * Starts a service of that transport: its options are the host's (above) and the transport's own, any other name is
 * refused with the nearest. A transport whose tasks run in the caller's process has no service side.
 */
export async function startComputeService(
  transport: string,
  options: ServiceHostOptions & Record<string, unknown>,
): Promise<ComputeService> {
  const definition = transportNamed(transport);
  if (definition.service === undefined) {
    const served = TRANSPORT_NAMES.filter((name) => transportNamed(name).service !== undefined);
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `the ${transport} transport runs tasks in the caller's process: it has no service side (${served.join(', ')} has)`,
    );
  }
  refuseUnknownOptions(options, [...HOST_NAMES, ...definition.service.optionNames]);
  const module = (await import(definition.service.module.href)) as ServiceModule;
  return module.startService(options);
}
