/**
 * The fleet lab's fault matrix (docs/lab.md, "What the lab shows"): each scenario of test/lab/ run as it is in
 * `npm test` (each builds its hosts, puts load on them, injects its fault, counts failed and wrong answers, removes
 * everything), and what each measured, as it reports it. The figures are those the tests print, from this run: no
 * other source. Root only (the tests skip, saying why, elsewhere).
 *
 *   npm run bench -- lab-faults
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

export interface FaultRow {
  file: string;
  test: string;
  outcome: 'passed' | 'failed' | 'skipped';
  /** What the test measured (its diagnostics), in order. */
  figures: string[];
  /** A failed test's error message. */
  error?: string;
}

const LAB_TESTS = path.join(import.meta.dirname, '..', 'test', 'lab');

/**
 * Reads node:test's TAP: each top-level test's name and result, and the diagnostics it printed (they follow its
 * result line, up to the next test or the summary).
 */
export function parseTap(file: string, tap: string): FaultRow[] {
  const rows: FaultRow[] = [];
  let current: FaultRow | null = null;
  for (const line of tap.split('\n')) {
    const result = /^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$/.exec(line);
    if (result !== null) {
      const outcome = result[3] === 'SKIP' ? 'skipped' : result[1] === 'ok' ? 'passed' : 'failed';
      rows.push((current = { file, test: result[2]!, outcome, figures: [] }));
    } else if (/^# (Subtest: |(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) \d)/.test(line)) {
      current = null;
    } else if (current !== null && line.startsWith('# ')) {
      current.figures.push(line.slice(2));
    } else if (current?.outcome === 'failed' && current.error === undefined) {
      // The YAML block under a failure: `error: 'message'`, or `error: |-` and the message on the next line.
      const error = /^ {2}error: (?:'(.*)'|(?!\|)(.+))$/.exec(line);
      if (error !== null) current.error = error[1] ?? error[2];
      else if (/^ {2}error: \|-?$/.test(line)) current.error = '';
    } else if (current?.outcome === 'failed' && current.error === '' && line.trim() !== '') {
      current.error = line.trim();
    }
  }
  return rows;
}

export async function labFaults(): Promise<FaultRow[]> {
  const rows: FaultRow[] = [];
  for (const file of readdirSync(LAB_TESTS)
    .filter((name) => name.endsWith('.test.ts'))
    .sort()) {
    console.error(`lab-faults: ${file}`);
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', path.join(LAB_TESTS, file)], {
      env: { ...process.env, NODE_OPTIONS: '--conditions=nodescale-source' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let tap = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (tap += chunk));
    await new Promise((resolve) => child.on('close', resolve));
    rows.push(...parseTap(file, tap));
  }
  return rows;
}
