/**
 * nodescale/runtime: keep a live Node.js service healthy. One export a line.
 */
import '../node-version.ts'; // first: on an unsupported Node, NS_ERR_NODE_VERSION before anything else loads
export { createRuntime, protect } from '../protect/protect.ts';
export { expressRoutes } from './express.ts';
export { Runtime, ROUTE, type Readiness } from './runtime.ts';
export {
  RUNTIME_DEFAULTS,
  jsonLogger,
  type RuntimeOptions,
  type OverloadOptions,
  type ShutdownOptions,
  type LeakOptions,
  type PostMortemOptions,
  type Logger,
  type Priority,
} from './options.ts';
export type { RuntimeSample } from './sampler.ts';
export type { OverloadState, OverloadReason } from './overload.ts';
export type { LeakReport } from './leak-detector.ts';
export type { ShutdownOutcome } from './shutdown.ts';
export { writeHeapSnapshot } from './heap-snapshot.ts';
export { redactedReport } from '../redact.ts';
export { CHANNELS } from '../diagnostics.ts';
export { AdminServer, type AdminOptions, type AdminAddress, type AdminTlsOptions } from '../admin/server.ts';
export type { RequestLogEntry } from './runtime.ts';
