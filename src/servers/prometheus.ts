/**
 * A private Prometheus, from Debian's `prometheus`, on a free loopback port with a data directory of its own (0700):
 * it scrapes the given targets every second and evaluates the given rule file every second, so a test sees a rule
 * evaluated (or an alert fire) within seconds. `stop()` ends it and removes its directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, freePort, terminate, waitForPort } from './process.ts';

export interface PrometheusServer {
  /** http://127.0.0.1:<port>: its HTTP API is under /api/v1/. */
  readonly url: string;
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startPrometheus(options: {
  /** host:port of each /metrics to scrape. */
  targets: string[];
  /** A rule file's text. */
  rules?: string;
  startTimeoutMs?: number;
}): Promise<PrometheusServer> {
  const executable = findExecutable('prometheus', 'prometheus');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-prometheus-'));
  const port = await freePort();
  const ruleFiles = options.rules === undefined ? [] : [path.join(dir, 'rules.yml')];
  if (options.rules !== undefined) writeFileSync(ruleFiles[0]!, options.rules);
  // JSON is YAML: the configuration needs no YAML writer.
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
      rule_files: ruleFiles,
      scrape_configs: [{ job_name: 'nodescale', static_configs: [{ targets: options.targets }] }],
    }),
  );
  const log = openSync(path.join(dir, 'prometheus.log'), 'a');
  const child: ChildProcess = spawn(
    executable,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `prometheus exited (${signal ?? `code ${code}`}); its log is in ${dir}`;
  });
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null) await terminate(child.pid, 5_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, options.startTimeoutMs ?? 30_000, () => exited);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, dir, stop };
}
