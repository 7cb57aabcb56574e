/**
 * The dashboard of supervisors that run already, by name (`nodescale dashboard --name`, and `demo --scale-out`'s two
 * tiers on one page): one watch of each control socket, one collector each, one page.
 */
import { defaultControlPath } from '../supervisor/control.ts';
import { controlActions } from './actions.ts';
import { Collector } from './collector.ts';
import { watchSupervisor, type RemoteSource } from './remote-source.ts';
import { startDashboard, type Dashboard, type DashboardOptions } from './server.ts';

export interface SupervisorsDashboardOptions extends Pick<DashboardOptions, 'host' | 'port' | 'token'> {
  /** With it, the actions, each app's through its own control socket; `audit` hears every attempt. */
  admin?: { token: string; audit(entry: Record<string, unknown>): void } | null;
  /** A supervisor that went away (its watch ended), and why. */
  onClosed?(name: string, why: string): void;
}

export async function startSupervisorsDashboard(
  names: readonly string[],
  options: SupervisorsDashboardOptions,
): Promise<Dashboard> {
  const sources: RemoteSource[] = [];
  const collectors: Collector[] = [];
  const stopAll = () => {
    for (const collector of collectors) collector.close();
    for (const source of sources) source.close();
  };
  let dashboard: Dashboard;
  try {
    for (const name of names) {
      const source = await watchSupervisor(defaultControlPath(name));
      sources.push(source);
      collectors.push(new Collector(name, source));
      source.on('closed', (why: string) => options.onClosed?.(name, why));
    }
    const { admin } = options;
    dashboard = await startDashboard({
      host: options.host,
      port: options.port,
      token: options.token ?? null,
      apps: collectors,
      admin:
        admin === null || admin === undefined
          ? null
          : {
              ...admin,
              actions: new Map(names.map((name) => [name, controlActions(defaultControlPath(name))])),
            },
    });
  } catch (error) {
    stopAll();
    throw error;
  }
  return {
    url: dashboard.url,
    close: async () => {
      await dashboard.close();
      stopAll();
    },
  };
}
