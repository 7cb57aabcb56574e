/**
 * `nodescale run --dashboard` as a user opens it: in real Chromium (Debian's, driven by playwright-core, headless).
 * The page loads with no console error and no request leaving loopback; the table shows both workers; the req/s
 * chart draws data while `bench` runs; a worker killed with SIGKILL shows a crash mark; a reload shows its marks.
 * And closed by default: on an address other than loopback it refuses to start without a token, and with one every
 * request needs it. Skipped, saying why, where Chromium is not installed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runBin } from '../helpers/cli.ts';
import { startSupervised, SUPERVISED_APP } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const noChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** The fixture app under `nodescale run` with a dashboard (`flags`: where, its token). */
async function runWithDashboard(t: TestContext, name: string, flags: string[] = ['--dashboard', '0']) {
  const run = await startSupervised(t, name, flags);
  assert.ok(run.urls.dashboard, `the dashboard announced: ${run.output()}`);
  return { ...run, dashboard: run.urls.dashboard };
}

async function openPage(t: TestContext, url: string) {
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  page.on('request', (request) => requests.push(request.url()));
  await page.goto(url);
  return { page, problems, requests };
}

/** What the page's own state says (dashboard.js keeps its apps in a global `apps`). */
const pageState = (page: Page, expression: string) => page.evaluate(expression);

test(
  'the dashboard in Chromium: both workers, req/s drawn under bench, a SIGKILL crash marked, a reload marked',
  { skip: noChromium, timeout: 180_000 },
  async (t) => {
    const run = await runWithDashboard(t, `dash-${process.pid}`, ['--dashboard', '0', '--probation', '1s']);
    const { page, problems, requests } = await openPage(t, run.dashboard);
    await page.waitForSelector('section.app table.workers tbody tr');
    await waitUntil(
      async () => (await page.locator('section.app table.workers tbody tr').count()) === 2,
      'the table shows both workers',
      20_000,
    );
    assert.equal(await page.locator('.chart').count(), 7, 'seven charts');

    // Load: the req/s chart's app series gets values above zero.
    const bench = runBin(['bench', run.app, '-c', '4', '-d', '4s', '--json']);
    await waitUntil(
      async () =>
        (await pageState(
          page,
          `(() => { const app = [...apps.values()][0]; const plot = app.plots[0].plot; return plot.data[1].some((v) => v > 0); })()`,
        )) === true,
      'the req/s chart draws the load',
      30_000,
    );
    assert.equal((await bench).code, 0);

    // A worker killed: a crash mark, within a few seconds.
    const pid = Number(await page.locator('table.workers tbody tr').first().getAttribute('data-pid'));
    process.kill(pid, 'SIGKILL');
    await page.waitForSelector('.events li[data-kind="crash"]', { timeout: 15_000 });
    const marked = await pageState(
      page,
      `[...apps.values()][0].events.some((e) => e.kind === 'crash' && e.pid === ${pid})`,
    );
    assert.equal(marked, true, 'the crash is in the marks, with its pid');

    // A reload: started, each slot replaced, its verdict.
    await waitUntil(
      async () => (await page.locator('table.workers tbody tr').count()) === 2,
      'the slot restarted',
      30_000,
    );
    const reload = await runBin(['reload', '--name', `dash-${process.pid}`]);
    assert.equal(reload.code, 0, reload.stderr);
    await page.waitForSelector('.events li[data-kind="replaced"]', { timeout: 30_000 });
    await waitUntil(
      async () =>
        (await pageState(
          page,
          `[...apps.values()][0].events.some((e) => e.kind === 'reload' && e.state === 'passed')`,
        )) === true,
      'the reload passed its probation, marked',
      30_000,
    );

    if (process.env.NODESCALE_SCREENSHOT)
      await page.screenshot({ path: process.env.NODESCALE_SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, []);
    const outside = requests.filter((url) => !url.startsWith('http://127.0.0.1:'));
    assert.deepEqual(outside, [], 'no request leaves loopback');
  },
);

test('closed by default: another address than loopback needs a token; with one, every request needs it', async (t) => {
  const refused = await runBin([
    'run',
    SUPERVISED_APP,
    '-w',
    '1',
    '--name',
    `dash-open-${process.pid}`,
    '--dashboard',
    '0.0.0.0:0',
  ]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(
    refused.stderr,
    /^error NS_ERR_DASHBOARD_INSECURE: the dashboard would be open to anyone who reaches 0\.0\.0\.0/m,
  );

  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-dashboard-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, 'token');
  const token = 'a'.repeat(8) + 'b'.repeat(24);
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const guarded = await runWithDashboard(t, `dash-guard-${process.pid}`, [
    ...['--dashboard', '0.0.0.0:0', '--dashboard-token-file', tokenFile],
  ]);
  const at = guarded.dashboard.replace('0.0.0.0', '127.0.0.1');
  assert.equal((await fetch(at)).status, 401);
  assert.equal((await fetch(`${at}api/snapshot`)).status, 401);
  assert.equal(
    (await fetch(`${at}api/snapshot`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
    401,
  );
  assert.equal((await fetch(`${at}api/snapshot`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  // Opened once with the token: a cookie, and the token gone from the address.
  const opened = await fetch(`${at}?token=${token}`, { redirect: 'manual' });
  assert.equal(opened.status, 303);
  assert.equal(opened.headers.get('location'), '/');
  const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
  assert.match(opened.headers.get('set-cookie')!, /HttpOnly; SameSite=Strict/);
  const page = await fetch(at, { headers: { cookie } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
});
