/**
 * `nodescale demo --scale-out`: the flags mapped to the fleet's scale-out (src/fleet/scale-out.ts, which starts and
 * stops everything), its tiers' output prefixed, the banner once everything answers, and Ctrl-C or SIGTERM at any
 * point stopping it all in order.
 */
import type { Dashboard } from '../dashboard/server.ts';
import { startSupervisorsDashboard } from '../dashboard/supervisors.ts';
import { announceListening } from '../ipc.ts';
import {
  checkScaleOutInstalled,
  startScaleOut,
  type ScaleOut,
  type ScaleOutAddresses,
  type ScaleOutOptions,
} from '../fleet/scale-out.ts';
import type { Io } from './io.ts';

export type ScaleOutArgs = Omit<ScaleOutOptions, 'bin' | 'output'> & {
  /** Both tiers' dashboard, on 127.0.0.1. */
  dashboardPort: number;
};

function banner(args: ScaleOutArgs, at: ScaleOutAddresses, dashboard: string): string {
  const api = at.api;
  const query = `curl -s ${api}/graphql -H 'content-type: application/json' -d '{"query":"{ tags(url: \\"${at.corpus}/articles/astronomy-1.html\\") }"}'`;
  return `
nodescale demo --scale-out: the API tier and the compute tier, split by a broker, sharing Redis

  API tier      ${args.workers} tagger worker(s) under nodescale run --name ${args.name}
                ${api}/graphql   (tags(url), urls(tag), health)
                metrics ${at.metrics}
  compute tier  ${args.computeWorkers} compute service(s) under nodescale run --name ${args.name}-compute
                metrics ${at.computeMetrics}
  broker        ${at.broker}   (RabbitMQ: the task queue)
  store         ${at.store}   (Redis: the tags cache and the reverse index)
  corpus        ${at.corpus}/
  dashboard     ${dashboard}   (both tiers live: open it in a browser)

Try:
  ${query}
  curl -s '${api}/graphql?query=%7Burls(tag:%22telescope%22)%20health%7Bstatus%20pid%7D%7D'
  npx nodescale bench ${api}/benchmark/get-tags -c 8 -d 10s
  npx nodescale bench ${api}/benchmark/get-urls -R 50 -d 10s     (beside the get-tags load: p99 stays low)
  npx nodescale scale 2 --name ${args.name}-compute      (or --name ${args.name}: either tier)
  npx nodescale status --name ${args.name}-compute       (then kill -9 a compute worker's pid: nothing is lost)
  npx nodescale top --name ${args.name}                  (the API tier's workers, in the terminal)
  npx nodescale reload --name ${args.name}               (under load: no request dropped, the index kept)

Ctrl-C stops everything: the API tier, then the compute tier, then the broker and Redis.
`;
}

export async function runScaleOut(args: ScaleOutArgs, bin: string, io: Io): Promise<number> {
  checkScaleOutInstalled(args);
  const stopping = new AbortController();
  const stop = () => stopping.abort(new Error('stopped'));
  const stopped = new Promise<'stopped'>((resolve) =>
    stopping.signal.addEventListener('abort', () => resolve('stopped')),
  );
  io.signal.addEventListener('abort', stop, { once: true });
  process.once('SIGTERM', stop);
  try {
    const starting = ['the corpus', ...(args.store === undefined ? ['redis-server'] : [])];
    if (args.broker === undefined) starting.push('rabbitmq-server (about 10 s)');
    io.stderr.write(`nodescale demo --scale-out: starting ${starting.join(', ')}\n`);
    let scaleOut: ScaleOut;
    try {
      scaleOut = await startScaleOut(
        {
          ...args,
          bin,
          output: (tier, stream, line) => (stream === 'stdout' ? io.stdout : io.stderr).write(`[${tier}] ${line}\n`),
        },
        stopping.signal,
      );
    } catch (error) {
      // Stopped while starting: what had started is stopped already.
      if (!stopping.signal.aborted) throw error;
      io.stderr.write('nodescale demo --scale-out: stopped\n');
      return 0;
    }
    // One page for both tiers, read through their control sockets as `nodescale dashboard --name` does.
    let dashboard: Dashboard;
    try {
      dashboard = await startSupervisorsDashboard([args.name, `${args.name}-compute`], {
        host: '127.0.0.1',
        port: args.dashboardPort,
      });
    } catch (error) {
      await scaleOut.stop();
      throw error;
    }
    io.stdout.write(banner(args, scaleOut.at, dashboard.url));
    // For a program that started the demo (the benches): where the API answers, once everything does.
    announceListening('demo', scaleOut.at.api);
    // A tier that ends by itself ends the demo.
    const outcome = await Promise.race([stopped, scaleOut.tierEnded.then(() => 'tier ended' as const)]);
    if (outcome === 'tier ended') io.stderr.write('nodescale demo --scale-out: a tier exited; stopping the rest\n');
    await dashboard.close();
    const code = await scaleOut.stop();
    io.stderr.write('nodescale demo --scale-out: stopped\n');
    return outcome === 'stopped' ? code : 1;
  } finally {
    io.signal.removeEventListener('abort', stop);
    process.off('SIGTERM', stop);
  }
}
