/**
 * Every diagnostics_channel name and debug namespace of nodescale, in one place (documented in docs/runtime.md).
 * Subscribe with `diagnostics_channel.subscribe(CHANNELS.sample, fn)`; debug output with NODE_DEBUG=nodescale.
 * Publishers go through publish(): a message is built only when the channel has subscribers.
 */
import { channel, type Channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

export const CHANNELS = Object.freeze({
  /** A runtime sample, every sampling interval: RuntimeSample. */
  sample: 'nodescale:runtime:sample',
  /** Overload started: { type: 'overload', reasons }. */
  overload: 'nodescale:runtime:overload',
  /** Overload ended: { type: 'recover', durationMs }. */
  recover: 'nodescale:runtime:recover',
  /** The leak detector fired: LeakReport. */
  leak: 'nodescale:runtime:leak',
  /** Graceful shutdown started: { reason } ('SIGTERM', 'requested', …). */
  shutdown: 'nodescale:runtime:shutdown',
  /** A stall is over (stall capture on): StallReport, { heldMs, capture }. */
  stall: 'nodescale:runtime:stall',
  /** A crash bundle was written: { dir, error }. */
  crash: 'nodescale:runtime:crash',
  /** A compute call ended: { transport, task, durationMs, ok, code } (code: the error's, when not ok). */
  computeCall: 'nodescale:compute:call',
  /** A compute service was handed a task again (a service died or froze holding it): { queue, task }. */
  computeRedelivery: 'nodescale:compute:redelivery',
  /** A compute service dead-lettered a task as poison and answered its caller: { queue, task }. */
  computeDeadLetter: 'nodescale:compute:dead-letter',
  /** The tagger's shared store became unreachable or stopped answering: { store, reason }. */
  storeDegraded: 'nodescale:store:degraded',
  /** The shared store answers again: { store }. */
  storeRecovered: 'nodescale:store:recovered',
  /** bench: one response's latency, µs (a number), for every measured response of a generator on this thread. */
  benchLatency: 'nodescale:bench:latency',
});

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];

const channels = new Map<string, Channel>();

/** Publishes on a channel; `message` is called only when someone listens (no cost otherwise). */
export function publish(name: ChannelName, message: () => unknown): void {
  let target = channels.get(name);
  if (target === undefined) channels.set(name, (target = channel(name)));
  if (target.hasSubscribers) target.publish(message());
}

export const debug = debuglog('nodescale');
