/**
 * nodescale/compute: one export a line.
 */
import '../node-version.ts'; // first: on an unsupported Node, NS_ERR_NODE_VERSION before anything else loads
export {
  createCompute,
  resolveComputeOptions,
  COMPUTE_DEFAULTS,
  TRANSPORT_NAMES,
  type Compute,
  type ComputeOptions,
  type CallOptions,
  type ComputeStats,
  type Task,
  type TaskModule,
} from './compute.ts';
