/**
 * `nodescale run --dashboard` as a user opens it: in real Chromium (Debian's, driven by playwright-core, headless).
 * The page loads with no console error and no request leaving loopback; the table shows both workers; the req/s
 * chart draws data while `bench` runs; a worker killed with SIGKILL shows a crash mark; a reload shows its marks.
 * And closed by default: on an address other than loopback it refuses to start without a token, and with one every
 * request needs it. Skipped, saying why, where Chromium is not installed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test(
  'actions only with the admin token: none without it; with it reload, scale and heap snapshot from the page, each audited',
  { skip: noChromium, timeout: 180_000 },
  async (t) => {
    // Without an admin token: no button, and the action endpoint refuses.
    const plain = await runWithDashboard(t, `dash-ro-${process.pid}`);
    const readOnly = await openPage(t, plain.dashboard);
    await readOnly.page.waitForSelector('section.app table.workers tbody tr');
    assert.equal(await readOnly.page.locator('button').count(), 0, 'no button on a read-only dashboard');
    assert.equal(await readOnly.page.locator('#admin').isVisible(), false);
    const refused = await fetch(`${plain.dashboard}api/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-nodescale-admin-token': 'x'.repeat(32) },
      body: JSON.stringify({ app: `dash-ro-${process.pid}`, action: 'scale', workers: 3 }),
    });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'NS_ERR_DASHBOARD_READ_ONLY');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-dashboard-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const adminFile = path.join(dir, 'admin-token');
    const adminToken = 'c'.repeat(40);
    writeFileSync(adminFile, `${adminToken}\n`, { mode: 0o600 });
    const name = `dash-admin-${process.pid}`;
    const run = await runWithDashboard(t, name, [
      ...['--dashboard', '0', '--dashboard-admin-token-file', adminFile, '--console', '--log-format', 'json'],
      ...['--probation', '1s'],
    ]);
    const audited = () =>
      run
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { message?: string; action?: string; ok?: boolean; error?: string })
        .filter((entry) => entry.message === 'dashboard action');
    const post = (body: unknown, token: string | null = adminToken, type = 'application/json') =>
      fetch(`${run.dashboard}api/action`, {
        method: 'POST',
        headers: { 'content-type': type, ...(token === null ? {} : { 'x-nodescale-admin-token': token }) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    // Refused: no token, a wrong one (each audited), a body too large (before the token), a bad argument.
    assert.equal((await post({ app: name, action: 'reload' }, null)).status, 401);
    assert.equal((await post({ app: name, action: 'reload' }, 'd'.repeat(40))).status, 401);
    assert.equal((await post('x'.repeat(5000), null)).status, 413);
    assert.equal((await post('{}', adminToken, 'text/plain')).status, 415);
    const bad = await post({ app: name, action: 'scale', workers: 0 });
    assert.equal(bad.status, 400);
    assert.match(
      ((await bad.json()) as { error: { message: string } }).error.message,
      /workers must be a whole number/,
    );
    assert.equal((await post({ app: 'another', action: 'reload' })).status, 400);

    const { page, problems } = await openPage(t, run.dashboard);
    await page.waitForSelector('section.app table.workers tbody tr');
    await page.fill('#admin-token', adminToken);
    await page.fill('.actions .scale-to', '3');
    await page.click('button[data-action="scale"]');
    await page.waitForSelector('.action-result.ok', { timeout: 60_000 });
    await waitUntil(
      async () => (await page.locator('section.app table.workers tbody tr').count()) === 3,
      'the table shows the third worker',
      60_000,
    );
    const status = JSON.parse((await runBin(['status', '--name', name, '--json'])).stdout) as { workers: unknown[] };
    assert.equal(status.workers.length, 3, 'scaled through the control socket');

    await page.locator('table.workers tbody tr[data-slot="1"] button[data-action="heap-snapshot"]').click();
    const result = page.locator('.action-result');
    await waitUntil(
      async () => /heap snapshot of worker 1: /.test((await result.textContent()) ?? ''),
      'the snapshot written',
      60_000,
    );
    const said = await page.locator('.action-result').textContent();
    const file = /: (\/\S+\.heapsnapshot) /.exec(said!)?.[1];
    assert.ok(file !== undefined && existsSync(file), `the snapshot's file: ${said}`);
    t.after(() => rmSync(file, { force: true }));
    assert.ok((JSON.parse(readFileSync(file, 'utf8')) as { snapshot?: unknown }).snapshot, 'a V8 heap snapshot');

    await page.click('button[data-action="reload"]');
    await waitUntil(async () => /^reload: /.test((await result.textContent()) ?? ''), 'the reload answered', 120_000);
    assert.match((await page.locator('.action-result').textContent())!, /"replaced":3/);

    const entries = audited();
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.ok, entry.error]),
      [
        ['auth', false, 'NS_ERR_DASHBOARD_AUTH'],
        ['auth', false, 'NS_ERR_DASHBOARD_AUTH'],
        ['invalid', false, 'workers must be a whole number from 1 to 1024'],
        ['invalid', false, `app must be one of: ${name}`],
        ['scale', true, undefined],
        ['heap-snapshot', true, undefined],
        ['reload', true, undefined],
      ],
    );
    assert.ok(!run.output().includes(adminToken), 'the admin token is never logged');
    assert.deepEqual(problems, []);
  },
);

test("a worker's uncaught exception: its crash mark names the crash bundle its runtime wrote", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = await startSupervised(t, `dash-crash-${process.pid}`, ['--dashboard', '0'], { APP_CRASH_DIR: dir });
  assert.ok(run.urls.dashboard, run.output());
  await fetch(`${run.app}throw`).then((response) => response.text());
  type Crash = { kind: string; bundle?: string | null };
  let crash: Crash | undefined;
  await waitUntil(
    async () => {
      const { apps } = (await (await fetch(`${run.urls.dashboard}api/snapshot`)).json()) as {
        apps: { events: Crash[] }[];
      };
      crash = apps[0]!.events.find((event) => event.kind === 'crash');
      return crash !== undefined;
    },
    'the crash marked',
    20_000,
  );
  assert.ok(crash!.bundle, `a bundle named: ${JSON.stringify(crash)}`);
  assert.equal(path.dirname(crash!.bundle), dir);
  assert.ok(existsSync(path.join(crash!.bundle, 'error.json')), 'the bundle is there, with its error');
});
