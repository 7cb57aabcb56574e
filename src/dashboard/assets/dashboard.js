// The dashboard page: one section per app (its workers table, its charts, its events), fed by the server's stream
// (/api/stream: a snapshot, then a point a second and each event as it happens). Charts are uPlot's; events are
// drawn as marks on every chart of their app and listed below, each opening what it says.
'use strict';

const KEEP = 900; // points: 15 minutes at one a second, as the server keeps
const MARK_COLOURS = {
  crash: '#b91c1c',
  'crash-loop': '#7f1d1d',
  leak: '#b91c1c',
  overload: '#b45309',
  recover: '#047857',
  reload: '#1d4ed8',
  replaced: '#60a5fa',
  scale: '#7c3aed',
  memory: '#b45309',
  stall: '#9d174d',
};
const MARKED = new Set(Object.keys(MARK_COLOURS));
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

const COLUMNS = [
  ['slot', 'slot', (w) => w.slot],
  ['pid', 'pid', (w) => w.pid],
  ['gen', 'generation', (w) => w.generation],
  ['state', 'state', (w) => w.state],
  ['uptime', 'uptimeSeconds', (w) => duration(w.uptimeSeconds)],
  ['restarts', 'restarts', (w) => w.restarts],
  ['rss', 'rssBytes', (w) => bytes(w.rssBytes)],
  ['heap', 'heapUsedBytes', (w) => bytes(w.heapUsedBytes)],
  ['cpu %', 'cpuPercent', (w) => fixed(w.cpuPercent, 0)],
  ['loop p99', 'eventLoopDelayP99Ms', (w) => ms(w.eventLoopDelayP99Ms)],
  ['utilisation', 'utilization', (w) => fixed(w.utilization, 2)],
  ['req/s', 'requestsPerSecond', (w) => fixed(w.requestsPerSecond, 0)],
  ['in flight', 'inFlight', (w) => fixed(w.inFlight, 0)],
  ['shed/s', 'shedPerSecond', (w) => fixed(w.shedPerSecond, 0)],
];

/** Charts: a title, and the series each point gives (app-wide ones, or one per worker slot). */
const CHARTS = [
  { title: 'requests/s', perWorker: (w) => w.requestsPerSecond, app: [['all', (p) => p.requestsPerSecond]] },
  {
    title: 'HTTP latency, ms (merged histograms)',
    app: [
      ['p50', (p) => p.p50Ms],
      ['p99', (p) => p.p99Ms],
    ],
  },
  {
    title: 'event-loop delay p99, ms',
    perWorker: (w) => w.eventLoopDelayP99Ms,
    app: [['worst', (p) => p.eventLoopDelayP99Ms]],
  },
  { title: 'event-loop utilisation', perWorker: (w) => w.utilization },
  { title: 'CPU, % of a core', perWorker: (w) => w.cpuPercent },
  {
    title: 'memory, MiB',
    app: [
      ['rss', (p) => p.rssBytes / 1048576],
      ['heap used', (p) => p.heapUsedBytes / 1048576],
    ],
  },
  { title: 'GC pause, ms/s', perWorker: (w) => w.gcPauseMs },
];

const apps = new Map();
/** Whether the server offers actions (started with an admin token); the token itself is typed in, kept in memory. */
let actionsOffered = false;

function fixed(value, digits) {
  return value === null || value === undefined ? '–' : value.toFixed(digits);
}
function ms(value) {
  return value === null || value === undefined ? '–' : `${value.toFixed(1)} ms`;
}
function bytes(value) {
  return value === null || value === undefined ? '–' : `${(value / 1048576).toFixed(0)} MiB`;
}
function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** What an event says, in one line; `evidence` is what opening it shows. */
function describe(event) {
  const at = `worker ${event.slot}${event.pid ? ` (pid ${event.pid})` : ''}`;
  switch (event.kind) {
    case 'crash':
      return {
        line: `${at} crashed: ${event.signal ?? `exit code ${event.code}`}; restart in ${event.restartInMs} ms${event.bundle ? '; crash bundle' : ''}`,
        evidence:
          `exit code: ${event.code}\nsignal: ${event.signal}\nrestart in: ${event.restartInMs} ms` +
          (event.bundle ? `\ncrash bundle: ${event.bundle}` : ''),
      };
    case 'crash-loop':
      return { line: `${at} stopped restarting: ${event.reason}`, evidence: event.reason };
    case 'started':
      return { line: `${at} started, generation ${event.generation}` };
    case 'ready':
      return { line: `${at} ready, generation ${event.generation}` };
    case 'reload':
      return {
        line: `reload to generation ${event.generation}: ${event.state}${event.reason ? ` (${event.reason})` : ''}`,
        evidence: event.reason ?? undefined,
      };
    case 'replaced':
      return { line: `reload: slot ${event.slot} replaced (${event.replaced} of ${event.of}), pid ${event.pid}` };
    case 'scale':
      return { line: `scaled to ${event.workers} workers` };
    case 'memory':
      return { line: `${at} over --max-memory (${bytes(event.rssBytes)}): replaced` };
    case 'overload':
      return { line: `${at} shedding load`, evidence: event.detail };
    case 'recover':
      return { line: `${at} ${event.detail}` };
    case 'leak':
      return { line: `${at} leak suspected`, evidence: event.detail };
    case 'stall':
      return { line: `${at} event loop stalled`, evidence: event.detail };
    default:
      return { line: event.kind };
  }
}

function createApp(snapshot) {
  const section = element('section', { class: 'app', 'data-app': snapshot.name });
  const table = element('table', { class: 'workers' });
  const charts = element('div', { class: 'charts' });
  const list = element('ul');
  section.append(
    element('h2', {}, snapshot.name),
    table,
    charts,
    element('div', { class: 'events' }, element('h3', {}, 'events'), list),
  );
  if (actionsOffered) section.insertBefore(actionBar(snapshot.name), table);
  document.getElementById('apps').append(section);
  const app = {
    name: snapshot.name,
    section,
    table,
    list,
    charts,
    points: [],
    events: [],
    workers: [],
    sort: { key: 'slot', up: true },
    plots: [],
    slots: [],
  };
  apps.set(app.name, app);
  app.points = snapshot.points.slice(-KEEP);
  app.workers = snapshot.workers;
  for (const event of snapshot.events) addEvent(app, event);
  buildCharts(app);
  renderTable(app);
  return app;
}

/** POST /api/action with the admin token typed in the header; what it answered, shown in the app's section. */
async function act(name, body) {
  const app = apps.get(name);
  const shown = app.section.querySelector('.action-result');
  const token = document.getElementById('admin-token').value;
  shown.textContent = `${body.action}…`;
  shown.className = 'action-result';
  try {
    const response = await fetch('/api/action', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-nodescale-admin-token': token },
      body: JSON.stringify({ app: name, ...body }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`);
    const { result } = answer;
    shown.textContent =
      body.action === 'heap-snapshot'
        ? `heap snapshot of worker ${body.worker}: ${result.file} (${bytes(result.bytes)})`
        : `${body.action}: ${JSON.stringify(result)}`;
    shown.className = 'action-result ok';
  } catch (error) {
    shown.textContent = `${body.action} failed: ${error.message}`;
    shown.className = 'action-result bad';
  }
}

function actionBar(name) {
  const workers = element('input', { type: 'number', min: '1', max: '1024', value: '2', class: 'scale-to' });
  const reload = element('button', { type: 'button', 'data-action': 'reload' }, 'reload');
  const scale = element('button', { type: 'button', 'data-action': 'scale' }, 'scale to');
  reload.addEventListener('click', () => act(name, { action: 'reload' }));
  scale.addEventListener('click', () => act(name, { action: 'scale', workers: Number(workers.value) }));
  return element('div', { class: 'actions' }, reload, scale, workers, element('span', { class: 'action-result' }));
}

function slotsOf(points) {
  const slots = new Set();
  for (const point of points) for (const worker of point.workers) slots.add(worker.slot);
  return [...slots].sort((a, b) => a - b);
}

/** uPlot's data for a chart: time (s), then each series. */
function dataOf(app, chart) {
  const xs = app.points.map((p) => p.time / 1000);
  const columns = [xs];
  for (const [, pick] of chart.app ?? []) columns.push(app.points.map((p) => pick(p)));
  if (chart.perWorker) {
    for (const slot of app.slots) {
      columns.push(
        app.points.map((p) => {
          const worker = p.workers.find((w) => w.slot === slot);
          return worker === undefined ? null : chart.perWorker(worker);
        }),
      );
    }
  }
  return columns;
}

/** Draws the app's events as vertical marks on a chart. */
function marksPlugin(app) {
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx } = u;
          const top = u.bbox.top;
          const height = u.bbox.height;
          ctx.save();
          for (const event of app.events) {
            if (!MARKED.has(event.kind)) continue;
            const x = u.valToPos(event.time / 1000, 'x', true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = MARK_COLOURS[event.kind];
            ctx.lineWidth = 2;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };
}

function buildCharts(app) {
  for (const plot of app.plots) plot.destroy();
  app.plots = [];
  app.charts.replaceChildren();
  app.slots = slotsOf(app.points);
  const width = Math.max(420, Math.min(640, Math.floor(window.innerWidth / 2) - 48));
  for (const chart of CHARTS) {
    const series = [{}];
    let colour = 0;
    for (const [label] of chart.app ?? [])
      series.push({ label, stroke: chart.perWorker ? '#111827' : PALETTE[colour++], width: 2, spanGaps: true });
    if (chart.perWorker)
      for (const slot of app.slots)
        series.push({ label: `w${slot}`, stroke: PALETTE[slot % PALETTE.length], width: 1 });
    const holder = element('div', { class: 'chart', 'data-chart': chart.title });
    holder.append(element('h3', {}, chart.title));
    app.charts.append(holder);
    const plot = new uPlot(
      {
        width,
        height: 180,
        series,
        scales: { x: { time: true } },
        legend: { live: false },
        plugins: [marksPlugin(app)],
      },
      dataOf(app, chart),
      holder,
    );
    app.plots.push({ plot, chart, destroy: () => plot.destroy() });
  }
}

function updateCharts(app) {
  const slots = slotsOf(app.points);
  if (slots.join() !== app.slots.join()) return buildCharts(app); // a worker slot came or went: new series
  for (const { plot, chart } of app.plots) plot.setData(dataOf(app, chart));
}

function renderTable(app) {
  const { key, up } = app.sort;
  const rows = [...app.workers].sort((a, b) => {
    const x = a[key] ?? -Infinity;
    const y = b[key] ?? -Infinity;
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
  });
  const head = element('tr');
  for (const [label, field] of COLUMNS) {
    const th = element('th', { 'data-key': field }, label);
    if (field === key) th.className = up ? 'sorted up' : 'sorted';
    th.addEventListener('click', () => {
      app.sort = { key: field, up: app.sort.key === field ? !app.sort.up : true };
      renderTable(app);
    });
    head.append(th);
  }
  if (actionsOffered) head.append(element('th', {}, ''));
  const body = rows.map((worker) => {
    const tr = element('tr', { 'data-slot': String(worker.slot), 'data-pid': String(worker.pid) });
    for (const [, field, format] of COLUMNS) {
      const td = element('td', {}, String(format(worker)));
      if (field === 'eventLoopDelayP99Ms' && worker.eventLoopDelayP99Ms > 100) td.className = 'bad';
      if (field === 'state' && worker.state !== 'ready') td.className = 'bad';
      tr.append(td);
    }
    if (actionsOffered) {
      const snapshot = element('button', { type: 'button', 'data-action': 'heap-snapshot' }, 'heap snapshot');
      snapshot.addEventListener('click', () => act(app.name, { action: 'heap-snapshot', worker: worker.slot }));
      tr.append(element('td', {}, snapshot));
    }
    return tr;
  });
  app.table.replaceChildren(element('thead', {}, head), element('tbody', {}, ...body));
}

function addEvent(app, event) {
  app.events.push(event);
  if (app.events.length > 1000) app.events.shift();
  const { line, evidence } = describe(event);
  const item = element(
    'li',
    { class: event.kind, 'data-kind': event.kind },
    `${new Date(event.time).toLocaleTimeString()}  ${line}`,
  );
  if (evidence !== undefined) {
    item.title = 'open';
    item.addEventListener('click', () => {
      const open = item.querySelector('pre');
      if (open) open.remove();
      else item.append(element('pre', {}, evidence));
    });
  }
  app.list.prepend(item);
}

function connect() {
  const status = document.getElementById('connection');
  const stream = new EventSource('/api/stream');
  stream.addEventListener('open', () => {
    status.textContent = 'live';
    status.className = 'status live';
  });
  stream.addEventListener('error', () => {
    status.textContent = 'reconnecting…';
    status.className = 'status';
  });
  stream.addEventListener('snapshot', (message) => {
    const { apps: snapshots, actions } = JSON.parse(message.data);
    actionsOffered = actions === true;
    document.getElementById('admin').hidden = !actionsOffered;
    for (const app of apps.values()) {
      for (const plot of app.plots) plot.destroy();
      app.section.remove();
    }
    apps.clear();
    for (const snapshot of snapshots) createApp(snapshot);
  });
  stream.addEventListener('point', (message) => {
    const { app: name, point, workers } = JSON.parse(message.data);
    const app = apps.get(name);
    if (app === undefined) return;
    app.points.push(point);
    if (app.points.length > KEEP) app.points.shift();
    app.workers = workers;
    renderTable(app);
    updateCharts(app);
  });
  stream.addEventListener('mark', (message) => {
    const { app: name, event } = JSON.parse(message.data);
    const app = apps.get(name);
    if (app === undefined) return;
    addEvent(app, event);
    for (const { plot } of app.plots) plot.redraw(false);
  });
}

connect();
