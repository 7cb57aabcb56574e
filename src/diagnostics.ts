/**
 * Every diagnostics_channel name and debug namespace of nodescale, in one place (documented in docs/runtime.md).
 * Subscribe with `diagnostics_channel.subscribe(CHANNELS.sample, fn)`; debug output with NODE_DEBUG=nodescale.
 */
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
  /** Graceful shutdown started ({ reason }). */
  shutdown: 'nodescale:runtime:shutdown',
  /** A crash bundle was written ({ dir, error }). */
  crash: 'nodescale:runtime:crash',
});

export const debug = debuglog('nodescale');
