/**
 * What the dashboard costs (docs/dashboard.md): two supervisors side by side, 8 workers each of the protected hello
 * server, one with `--dashboard` and its page open in Chromium, the other without; both under the same load at the
 * same time, in rounds. Per round: the supervisor's CPU with the page ÷ without (as the difference, % of one core)
 * and the workers' throughput on ÷ off. Goals: < 2 % of a core, ≥ 0.99. Needs Debian's chromium.
 *
 *   npm run bench -- dashboard
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { runBench } from '../src/loadtest/run.ts';
import { freePort } from '../src/servers/process.ts';
import { BENCH_DIR, median, NODESCALE, processCpuMs, startProcess } from './lib.ts';

const APP = path.join(BENCH_DIR, 'servers', 'http.ts');
const CHROMIUM = '/usr/bin/chromium';

export interface DashboardCost {
  rounds: { cpuExtraPercent: number; throughputRatio: number }[];
  /** Median over rounds: the supervisor's CPU with the page open minus without, % of one core. */
  cpuExtraPercent: number;
  /** Median over rounds: requests/s with the dashboard ÷ without. */
  throughputRatio: number;
}

export async function dashboardCost(options: {
  seconds: number;
  rounds: number;
  workers: number;
}): Promise<DashboardCost | string> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install chromium): not measured`;
  const [onPort, offPort, pagePort] = [await freePort(), await freePort(), await freePort()];
  const start = (name: number, extra: string[]) =>
    startProcess(
      [NODESCALE, 'run', APP, '-w', String(options.workers), '--name', `bench-dash-${name}`, ...extra],
      new RegExp(`${options.workers} worker\\(s\\) ready`),
      { pin: false },
    );
  const appArgs = (port: number) => ['--', '--port', String(port), '--protect', '{}'];
  const on = await start(onPort, ['--dashboard', String(pagePort), ...appArgs(onPort)]);
  const off = await start(offPort, appArgs(offPort));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`http://127.0.0.1:${pagePort}/`);
    await page.waitForSelector('section.app table.workers tbody tr');
    const urls = [`http://127.0.0.1:${onPort}/`, `http://127.0.0.1:${offPort}/`] as const;
    const load = { connections: 16, durationMs: options.seconds * 1000, warmupMs: 500 };
    await Promise.all(urls.map((url) => runBench({ url, connections: 16, durationMs: 2000 })));
    const rounds: DashboardCost['rounds'] = [];
    for (let round = 0; round < options.rounds; round++) {
      const cpu = [processCpuMs(on.child.pid!), processCpuMs(off.child.pid!)];
      const started = performance.now();
      const [withPage, without] = await Promise.all(urls.map((url) => runBench({ url, ...load })));
      const elapsedMs = performance.now() - started;
      const used = [processCpuMs(on.child.pid!) - cpu[0]!, processCpuMs(off.child.pid!) - cpu[1]!];
      rounds.push({
        cpuExtraPercent: ((used[0]! - used[1]!) / elapsedMs) * 100,
        throughputRatio: withPage!.requests.perSecond / without!.requests.perSecond,
      });
      console.error(
        `  round ${round + 1}: supervisor CPU +${rounds.at(-1)!.cpuExtraPercent.toFixed(2)} % of a core, throughput on ÷ off ${rounds.at(-1)!.throughputRatio.toFixed(3)}`,
      );
    }
    return {
      rounds,
      cpuExtraPercent: median(rounds.map((r) => r.cpuExtraPercent)),
      throughputRatio: median(rounds.map((r) => r.throughputRatio)),
    };
  } finally {
    await browser.close();
    await Promise.all([on.stop(), off.stop()]);
  }
}
