/**
 * `nodescale grafana [--alerts]`: a Grafana dashboard for the metrics nodescale exports (JSON, importable as is), or
 * with --alerts the Prometheus alert rules (YAML), on stdout (src/dashboard/grafana.ts).
 */
import { alertRulesFile, grafanaDashboard } from '../dashboard/grafana.ts';
import { boolFlag, COMMON_FLAGS, parseCommandLine, type OptionSpecs } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = { alerts: { type: 'boolean' }, ...COMMON_FLAGS } as const satisfies OptionSpecs;

export const help = `Usage: nodescale grafana [--alerts]

A Grafana dashboard for what nodescale run --metrics exports (every worker's event loop, requests, latency from the
merged histograms, CPU, memory, GC, shedding, restarts), as JSON: Dashboards → New → Import. With --alerts, Prometheus
alert rules instead (YAML): the worst worker's event-loop delay and utilisation, shedding, restarts, a crash loop,
the leak detector, a failed reload, a worker that does not answer.

Options:
      --alerts    the alert rules, not the dashboard
  -h, --help      this help

Examples:
  nodescale grafana > nodescale-dashboard.json
  nodescale grafana --alerts > /etc/prometheus/rules/nodescale.yml && promtool check rules /etc/prometheus/rules/nodescale.yml`;

async function run(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandLine('grafana', argv, FLAGS, 0);
  io.stdout.write(boolFlag(values, 'alerts') ? alertRulesFile() : `${JSON.stringify(grafanaDashboard(), null, 2)}\n`);
  return 0;
}

export const grafanaCommand: Command = { name: 'grafana', help, run };
