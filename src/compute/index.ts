/**
 * nodescale/compute: one export a line.
 */
export { createCompute, resolveComputeOptions, COMPUTE_DEFAULTS, TRANSPORT_NAMES, type Compute, type ComputeOptions, type CallOptions, type ComputeStats, type Task, type TaskModule } from './compute.ts';
