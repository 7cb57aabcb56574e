/**
 * What the dashboard's buttons do, when it is started with an admin token (server.ts): reload, scale and a heap
 * snapshot, and nothing else. Each goes through the paths the CLI uses — the supervisor's control socket (`nodescale
 * reload`, `nodescale scale`) and the worker's admin console (`nodescale console --name APP --worker N
 * heap-snapshot`, written by the console's own code to this user's private directory and audited there by the
 * worker) — so a button can do no more than the same user at a terminal.
 */
import { AdminClient } from '../socket/client.ts';
import { outputFile, receiveFile } from '../admin/files.ts';
import { askSupervisor } from '../supervisor/control.ts';

export interface AppActions {
  /** A health-gated rolling reload (`nodescale reload`): its verdict, or its error. */
  reload(): Promise<unknown>;
  /** `nodescale scale N`. */
  scale(workers: number): Promise<unknown>;
  /** A heap snapshot of worker `slot`, written to a file on this machine: its path and size. */
  heapSnapshot(slot: number): Promise<{ file: string; bytes: number }>;
}

export const ACTION_NAMES = ['reload', 'scale', 'heap-snapshot'] as const;

/** How long an action may take: a reload waits for each new worker and its probation. */
const TIMEOUTS = { reload: 15 * 60_000, scale: 5 * 60_000, console: 5000 };

/** The actions of the supervisor whose control socket is `socketPath`. */
export function controlActions(socketPath: string): AppActions {
  return {
    reload: () => askSupervisor(socketPath, 'reload', {}, TIMEOUTS.reload),
    scale: (workers) => askSupervisor(socketPath, 'scale', { workers }, TIMEOUTS.scale),
    heapSnapshot: async (slot) => {
      const { socketPath: consolePath } = (await askSupervisor(
        socketPath,
        'console',
        { worker: slot },
        TIMEOUTS.console,
      )) as { socketPath: string };
      const client = await AdminClient.connect(consolePath);
      try {
        const file = outputFile('heap-snapshot', null);
        const { bytes } = (await receiveFile(client, 'heap-snapshot', {}, file)) as { bytes: number };
        return { file, bytes };
      } finally {
        client.close();
      }
    },
  };
}
