/**
 * The worker's side of `nodescale run` (src/supervisor/): when this process is a worker of the supervisor, the
 * runtime
 * - says when it is ready, and sends each sample's loop delay and request rate (for `nodescale status`);
 * - answers the supervisor's metrics requests with its registry as JSON, for the supervisor's one /metrics endpoint;
 * - tells the supervisor where its admin console listens, so `nodescale console --name APP --worker N` finds it;
 * - leaves SIGINT (a Ctrl-C sent to the whole process group) to the supervisor.
 * The messages and the environment are declared in src/ipc.ts.
 */
import { isMetricsRequest, isSupervisedWorker, tellSupervisor, WORKER_ENV } from '../ipc.ts';
import type { ServedMetrics } from './metrics.ts';

export { isSupervisedWorker, tellSupervisor };

/** The admin socket the supervisor chose for this worker (`nodescale run --console`), if any. */
export const supervisorAdminSocket = (): string | undefined =>
  isSupervisedWorker() ? process.env[WORKER_ENV.adminSocket] : undefined;

const ignore = () => {};

/**
 * A Ctrl-C in the terminal reaches the workers too (one process group): a worker leaves it to the supervisor, which
 * stops every worker with SIGTERM. Returns the function that restores the default.
 */
export function leaveSigintToSupervisor(): () => void {
  process.on('SIGINT', ignore);
  return () => process.off('SIGINT', ignore);
}

/** Answers each MetricsRequest with a MetricsAnswer of the same id; returns the unlink function. */
export function answerMetricsRequests(served: ServedMetrics): () => void {
  const onMessage = (message: unknown) => {
    if (!isMetricsRequest(message)) return;
    const { id } = message;
    served.json().then(
      (metrics) => tellSupervisor({ nodescale: 'metrics', id, metrics }),
      (error: Error) => tellSupervisor({ nodescale: 'metrics', id, error: error.message }),
    );
  };
  // While it listens, the IPC channel keeps the process alive (node refs it for 'message' listeners): the runtime's
  // close() removes it, and its graceful shutdown exits anyway.
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
