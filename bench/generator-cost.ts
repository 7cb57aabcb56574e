/**
 * Generator cost: CPU time per completed request of nodescale bench, wrk (-t1) and autocannon, against the same raw
 * `net` hello server, side by side in one run, in alternating rounds. Ratios to wrk are the figures; absolute µs
 * depend on the machine. Modes: keep-alive and pipelined over plain TCP, keep-alive over TLS (the same server behind
 * TLS, test/fixtures/tls's certificate; neither tool verifies it, as wrk never does), and nodescale with a 60-request
 * file beside nodescale with one URL (its ratio is to the single URL, the cost of many requests).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { corpusPaths } from '../src/corpus/generate.ts';
import { autocannonBin, BENCH_DIR, measure, median, NODESCALE, startHello, which } from './lib.ts';
import path from 'node:path';

export interface ToolCost {
  tool: string;
  mode: 'keep-alive' | 'pipelined' | 'tls keep-alive' | 'requests file';
  /** Median over rounds. */
  cpuMicrosPerRequest: number;
  /** Median over rounds of this round's cost ÷ wrk's in the same round (requests file: ÷ nodescale's single URL). */
  ratioToWrk: number | null;
  requestsPerSecond: number;
  rounds: number[];
}

interface Tool {
  name: string;
  run(url: string, seconds: number, pipeline: number): Promise<{ requests: number; seconds: number; cpuMs: number }>;
}

const CONNECTIONS = 64;
const TLS_DIR = new URL('../test/fixtures/tls/', import.meta.url).pathname;

function nodescale(name: string, extra: string[]): Tool {
  return {
    name,
    async run(url, seconds, pipeline) {
      const m = await measure([
        process.execPath,
        NODESCALE,
        'bench',
        url,
        '-c',
        String(CONNECTIONS),
        '-p',
        String(pipeline),
        '-d',
        `${seconds}s`,
        '--json',
        ...extra,
      ]);
      const r = JSON.parse(m.stdout);
      if (r.requests.total === 0 || r.errors.total > 0)
        throw new Error(`nodescale bench ${url}: errors ${JSON.stringify(r.errors)}`);
      return { requests: r.requests.total, seconds: r.durationMs / 1000, cpuMs: m.cpuMs };
    },
  };
}

function tools(tls: boolean): Tool[] {
  const list: Tool[] = [nodescale('nodescale', tls ? ['--insecure'] : [])];
  if (which('wrk')) {
    list.push({
      name: 'wrk',
      async run(url, seconds, pipeline) {
        const args = ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`];
        if (pipeline > 1) args.push('-s', path.join(BENCH_DIR, 'wrk-pipeline.lua'));
        process.env.NS_PIPELINE = String(pipeline);
        const m = await measure([...args, url]);
        const match = /(\d+) requests in ([\d.]+)s/.exec(m.stdout);
        if (!match) throw new Error(`unexpected wrk output: ${m.stdout}`);
        return { requests: Number(match[1]), seconds: Number(match[2]), cpuMs: m.cpuMs };
      },
    });
  } else {
    console.error('wrk not found: apt-get install -y wrk (the ratio to wrk needs it)');
  }
  const autocannon = autocannonBin();
  if (autocannon && !tls) {
    list.push({
      name: 'autocannon',
      async run(url, seconds, pipeline) {
        const m = await measure([
          process.execPath,
          autocannon,
          '-c',
          String(CONNECTIONS),
          '-p',
          String(pipeline),
          '-d',
          String(seconds),
          '--json',
          url,
        ]);
        const r = JSON.parse(m.stdout);
        return { requests: r.requests.total, seconds: r.duration, cpuMs: m.cpuMs };
      },
    });
  }
  return list;
}

export async function generatorCost(options: { seconds: number; rounds: number }): Promise<ToolCost[]> {
  const server = await startHello('tcp');
  const tlsServer = await startHello('tcp', [
    '--tls-cert',
    path.join(TLS_DIR, 'server.pem'),
    '--tls-key',
    path.join(TLS_DIR, 'server.key'),
  ]);
  // 60 different requests: the corpus's page paths, each a GET with its own path and an accept header.
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-bench-requests-'));
  const requestsFile = path.join(dir, 'requests.ndjson');
  writeFileSync(
    requestsFile,
    corpusPaths()
      .map((page) => JSON.stringify({ path: page, headers: { accept: 'text/html' } }))
      .join('\n'),
  );
  const results: ToolCost[] = [];
  try {
    for (const [mode, pipeline] of [
      ['keep-alive', 1],
      ['pipelined', 10],
      ['tls keep-alive', 1],
      ['requests file', 1],
    ] as const) {
      const tls = mode === 'tls keep-alive';
      const url = tls ? tlsServer.url : server.url;
      // The requests-file row compares nodescale with itself: one URL, and the 60-request file.
      const list =
        mode === 'requests file'
          ? [nodescale('nodescale (one URL)', []), nodescale('nodescale (60 requests)', ['--requests', requestsFile])]
          : tools(tls);
      const perTool = new Map(list.map((t) => [t.name, { cost: [] as number[], rps: [] as number[] }]));
      for (let round = 0; round < options.rounds; round++) {
        // Rotate the order each round so that no tool always runs first.
        for (let i = 0; i < list.length; i++) {
          const tool = list[(i + round) % list.length]!;
          const r = await tool.run(url, options.seconds, pipeline);
          perTool.get(tool.name)!.cost.push((r.cpuMs * 1000) / r.requests);
          perTool.get(tool.name)!.rps.push(r.requests / r.seconds);
          console.error(
            `  ${mode} round ${round + 1} ${tool.name}: ${((r.cpuMs * 1000) / r.requests).toFixed(2)} µs CPU/request, ${Math.round(r.requests / r.seconds)} req/s`,
          );
        }
      }
      // The ratio is taken within each round (runs next to each other see the same machine), then its median.
      const wrk = perTool.get(mode === 'requests file' ? 'nodescale (one URL)' : 'wrk');
      for (const [tool, { cost, rps }] of perTool) {
        const ratios = wrk ? cost.map((c, round) => c / wrk.cost[round]!) : null;
        results.push({
          tool,
          mode,
          cpuMicrosPerRequest: median(cost),
          requestsPerSecond: median(rps),
          ratioToWrk: ratios && median(ratios),
          rounds: cost,
        });
      }
    }
  } finally {
    server.stop();
    tlsServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
