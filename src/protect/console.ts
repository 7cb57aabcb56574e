/**
 * Opens the admin console (src/admin/) of a runtime configured with `admin`: the adapters call it, so that the
 * runtime itself does not depend on its console. The console's configuration is checked at once (an insecure one
 * fails protect() itself); it listens from then on, says where to the supervisor when supervised, and closes with
 * the runtime's graceful shutdown or its close() (Runtime#useConsole).
 */
import { AdminServer } from '../admin/server.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { isSupervisedWorker, tellSupervisor } from '../runtime/supervisor-client.ts';

export function openConsole(runtime: Runtime): AdminServer | null {
  const options = runtime.options.admin;
  if (options === null) return null;
  const admin = new AdminServer(runtime, options);
  const { logger } = runtime.options;
  admin.listen().then(
    (address) => {
      logger('info', 'admin console listening', { ...address });
      if (isSupervisedWorker() && address.socketPath !== null)
        tellSupervisor({ nodescale: 'admin', socketPath: address.socketPath });
    },
    (error: Error) => logger('error', `admin console: ${error.message}`),
  );
  runtime.useConsole(admin);
  return admin;
}
