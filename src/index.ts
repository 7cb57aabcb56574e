/**
 * nodescale's public API. One export a line; nothing internal leaks.
 */
import './node-version.ts'; // first: on an unsupported Node, NS_ERR_NODE_VERSION before anything else loads
export { NodescaleError, ERROR_CODES, isNodescaleError, type ErrorCode, type ErrorKind } from './errors.ts';
export { runBench, type BenchControl, type BenchProgress } from './loadtest/run.ts';
export { BENCH_DEFAULTS, type BenchOptions } from './loadtest/options.ts';
export type { BenchResult, NamedResult } from './loadtest/aggregate.ts';
export { mergeResults, type MergedResult } from './loadtest/merge.ts';
export { evaluateThresholds, parseThreshold, type Threshold, type ThresholdOutcome } from './loadtest/thresholds.ts';
export type { RequestSpec } from './loadtest/request-file.ts';
export type { LatencySummary } from './loadtest/histogram.ts';
export {
  runSweep,
  geometricLevels,
  SWEEP_DEFAULTS,
  type SweepOptions,
  type SweepResult,
  type SweepLevel,
  type SweepControl,
} from './loadtest/sweep.ts';
export {
  findKnee,
  fitUsl,
  powerKnee,
  uslThroughput,
  type Knee,
  type KneePoint,
  type PowerKnee,
  type UslFit,
} from './loadtest/knee.ts';
export {
  compareServers,
  COMPARE_DEFAULTS,
  type CompareOptions,
  type CompareResult,
  type ServerFigures,
} from './compare/servers.ts';
export { startHello, HELLO_KINDS, type HelloKind, type HelloServer } from './hello/index.ts';
export { AdminClient, type ConnectOptions } from './socket/client.ts';
export { renderFlameGraph, type CpuProfile } from './admin/flamegraph.ts';
