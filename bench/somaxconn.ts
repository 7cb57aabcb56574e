/**
 * The talk's somaxconn table, reproduced (docs/talk-2016-figures.md): in a network namespace of its own (somaxconn is
 * per namespace), `nodescale hello http` and `nodescale bench -c 1000` at each net.core.somaxconn the talk tried.
 * Per row: connections that never got in (timed out in the SYN queue, or refused), requests ÷ the 1024 row's, p99 of
 * those that got in, and doctor's verdict. Needs root and `ip netns`; skipped (with the reason) otherwise.
 *
 *   npm run bench -- somaxconn
 */
import { NODESCALE } from './lib.ts';
import { createNamespace, namespacesUnavailable } from '../src/servers/netns.ts';

export interface SomaxconnRow {
  somaxconn: number;
  connections: number;
  neverIn: number;
  requests: number;
  requestsRatioTo1024: number | null;
  p99Ms: number;
  doctor: string;
}

const PORT = 18081;

/** One bench run at `somaxconn` in `ns`: the figures, and doctor's verdict on that setting. */
export async function runAtSomaxconn(
  ns: ReturnType<typeof createNamespace>,
  somaxconn: number,
  connections: number,
  seconds: number,
): Promise<Omit<SomaxconnRow, 'requestsRatioTo1024'>> {
  ns.sysctl('net.core.somaxconn', somaxconn);
  const hello = ns.spawn([process.execPath, NODESCALE, 'hello', 'http', '--port', String(PORT)]);
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      hello.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (/listening on/.test(out)) resolve();
      });
      hello.once('exit', (code) => reject(new Error(`hello exited (${code}) before it listened`)));
    });
    const bench = await ns.exec([
      process.execPath,
      NODESCALE,
      'bench',
      `http://127.0.0.1:${PORT}/`,
      '-c',
      String(connections),
      '-d',
      `${seconds}s`,
      '--json',
    ]);
    const result = JSON.parse(bench.stdout) as {
      requests: { total: number };
      errors: { timeout: number; connect: number };
      latencyMs: { p99: number };
    };
    const doctor = await ns.exec([process.execPath, NODESCALE, 'doctor', '--json', '-c', String(connections)]);
    const finding = (JSON.parse(doctor.stdout) as { findings: { check: string; severity: string }[] }).findings.find(
      (f) => f.check === 'net.core.somaxconn',
    )!;
    return {
      somaxconn,
      connections,
      neverIn: result.errors.timeout + result.errors.connect,
      requests: result.requests.total,
      p99Ms: result.latencyMs.p99,
      doctor: finding.severity,
    };
  } finally {
    hello.kill('SIGTERM');
    await new Promise((resolve) => (hello.exitCode === null ? hello.once('exit', resolve) : resolve(null)));
  }
}

export async function somaxconnTable(options: { seconds: number }): Promise<SomaxconnRow[] | string> {
  const why = namespacesUnavailable();
  if (why !== null) return why;
  const ns = createNamespace(`ns-bench-somax-${process.pid}`);
  try {
    const rows: Omit<SomaxconnRow, 'requestsRatioTo1024'>[] = [];
    for (const somaxconn of [16, 128, 512, 1024]) rows.push(await runAtSomaxconn(ns, somaxconn, 1000, options.seconds));
    const base = rows.find((r) => r.somaxconn === 1024)!.requests;
    return rows.map((r) => ({ ...r, requestsRatioTo1024: base > 0 ? r.requests / base : null }));
  } finally {
    await ns.remove();
  }
}
