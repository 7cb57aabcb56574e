/**
 * The tagger's Redis store against a real redis-server (one per file, on a free port, stopped after): the index kept
 * in step, bounded, under its prefix; the cache's TTL; single flight across stores; and Redis going away and coming
 * back under the tagging API.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CHANNELS } from '../../src/diagnostics.ts';
import { redactUrl } from '../../src/redact.ts';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test, type TestContext } from 'node:test';
import { createClient } from '@redis/client';
import { NodescaleError } from '../../src/errors.ts';
import { startRedis, type RedisServer } from '../../src/servers/redis.ts';
import { startTaggerServer } from '../../src/tagger/server.ts';
import { SCRIPTS } from '../../src/tagger/redis-scripts.ts';
import { openStore } from '../../src/tagger/tagger.ts';
import type { StoreOptions, TagStore } from '../../src/tagger/store.ts';
import { countingServer } from '../helpers/servers.ts';
import { runBin } from '../helpers/cli.ts';
import { waitUntil } from '../helpers/wait.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());

let prefixes = 0;
async function store(t: TestContext, options: StoreOptions = {}): Promise<TagStore> {
  const opened = await openStore({ store: redis.url, storePrefix: `test${++prefixes}`, ...options });
  t.after(() => opened.close());
  return opened;
}

const PAGE = (topic: string) =>
  `<html><head><title>${topic}</title></head><body><article><p>${`The ${topic} and the ${topic} again. `.repeat(20)}</p></article></body></html>`;

test('the index follows each URL: its old tags no longer lead to it; sizes; URLs sorted', async (t) => {
  const s = await store(t);
  await s.record('http://b.example/', ['telescope', 'mirror'], { cache: true });
  await s.record('http://a.example/', ['telescope'], { cache: true });
  assert.deepEqual(await s.urls('telescope'), ['http://a.example/', 'http://b.example/']);
  assert.deepEqual(await s.urls(' Mirror '), ['http://b.example/']);
  assert.deepEqual(await s.size(), { urls: 2, tags: 2 });
  // The page changed: b's tags are now others.
  await s.record('http://b.example/', ['lens'], { cache: true });
  assert.deepEqual(await s.urls('telescope'), ['http://a.example/']);
  assert.deepEqual(await s.urls('mirror'), []);
  assert.deepEqual(await s.urls('lens'), ['http://b.example/']);
  assert.deepEqual(await s.size(), { urls: 2, tags: 2 });
  assert.deepEqual(await s.cached('http://b.example/'), ['lens']);
  assert.equal(s.status(), 'ok');
});

test('urls(tag) pages alike in Redis and in the process: URL order, first/after, a URL dropped between pages moves no other', async (t) => {
  for (const where of [redis.url, 'embedded']) {
    const s = await store(t, { store: where });
    const all = Array.from({ length: 250 }, (_, i) => `http://site.example/${String(i).padStart(3, '0')}`);
    // Tagged in a shuffled order, one URL re-tagged (it must not appear twice), one URL with another tag only.
    for (const i of all.keys()) await s.record(all[(i * 97) % all.length]!, ['popular'], { cache: false });
    await s.record(all[7]!, ['popular', 'other'], { cache: false });
    await s.record('http://elsewhere.example/', ['other'], { cache: false });
    assert.deepEqual(await s.urls('popular'), all.slice(0, 100), `${where}: the default page`);
    assert.deepEqual(await s.urls('popular', { first: 3, after: all[99] }), all.slice(100, 103), where);
    // The cursor is a URL, not an offset: one dropped before it changes nothing after it.
    await s.record(all[50]!, ['retagged'], { cache: false });
    assert.deepEqual(await s.urls('popular', { first: 3, after: all[99] }), all.slice(100, 103), where);
    assert.deepEqual(await s.urls('popular', { first: 2, after: all[49] }), [all[51], all[52]], where);
    // A cursor that is no member starts after where it would sort; past the end, an empty page.
    assert.deepEqual(await s.urls('popular', { first: 1, after: 'http://site.example/099x' }), [all[100]], where);
    assert.deepEqual(await s.urls('popular', { first: 10, after: all.at(-3) }), all.slice(-2), where);
    assert.deepEqual(await s.urls('popular', { first: 10, after: all.at(-1) }), [], where);
    assert.deepEqual(await s.urls('other', { first: 10 }), [all[7], 'http://elsewhere.example/'].sort(), where);
  }
});

test('bounded: past maxIndexedUrls the URL tagged longest ago goes, with its tags; the cache expires by TTL', async (t) => {
  const s = await store(t, { maxIndexedUrls: 2, cacheTtlMs: 300 });
  await s.record('http://1.example/', ['one', 'shared'], { cache: true });
  await s.record('http://2.example/', ['shared'], { cache: false });
  await new Promise((resolve) => setTimeout(resolve, 5)); // a later score than the first two
  await s.record('http://3.example/', ['shared'], { cache: true });
  assert.deepEqual(await s.urls('shared'), ['http://2.example/', 'http://3.example/']);
  assert.deepEqual(await s.urls('one'), []);
  assert.deepEqual(await s.size(), { urls: 2, tags: 1 });
  assert.equal(await s.cached('http://2.example/'), undefined, 'cache: false is not cached');
  assert.deepEqual(await s.cached('http://3.example/'), ['shared']);
  await waitUntil(async () => (await s.cached('http://3.example/')) === undefined, 'the cached tags expire');
  assert.deepEqual(await s.urls('shared'), ['http://2.example/', 'http://3.example/'], 'the index outlives the cache');
});

test('rediss with a CA and a client certificate per connection (tls-auth-clients yes); what is missing named, one line', async (t) => {
  const file = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url).pathname;
  const secure = await startRedis({ tls: { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') } });
  t.after(() => secure.stop());
  const url = secure.tlsUrl!;
  const ca = readFileSync(file('ca.pem'));
  const s = await store(t, {
    store: url,
    storeTls: { ca, cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')) },
  });
  await s.record('http://tls.example/', ['secure'], { cache: true });
  assert.deepEqual(await s.urls('secure'), ['http://tls.example/']);
  assert.equal(s.status(), 'ok');
  // Without the CA, then without a client certificate: the start fails with what to give (it was degraded forever).
  await assert.rejects(openStore({ store: url }), {
    code: 'NS_ERR_STORE_TLS',
    message:
      /not signed by a CA this process trusts \(SELF_SIGNED_CERT_IN_CHAIN\): give its CA \(--store-ca FILE, or storeTls\.ca\)/,
  });
  await assert.rejects(openStore({ store: url, storeTls: { ca } }), {
    code: 'NS_ERR_STORE_TLS',
    message: /refused this client's certificate, or asks for one .*: give --store-cert FILE and --store-key FILE/,
  });
  await assert.rejects(openStore({ store: secure.url, storeTls: { ca } }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: /storeTls must be given with a TLS URL only/,
  });
  // The CLI reads the files, for a rediss:// URL only; the password is never printed.
  const bad = await runBin(['tagger', '--store', secure.url, '--store-ca', file('ca.pem')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error NS_ERR_USAGE: --store-ca: give them with a --store rediss:\/\/ URL\n$/);
  const untrusted = await runBin(['tagger', '--port', '0', '--store', url]);
  assert.equal(untrusted.code, 1);
  assert.match(
    untrusted.stderr,
    /^error NS_ERR_STORE_TLS: cannot connect to Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: .*--store-ca FILE/,
  );
  assert.equal(untrusted.stderr.trim().split('\n').length, 1, untrusted.stderr);
});

test('a private server started, restarted and stopped leaves no file descriptor open in the process that started it', async () => {
  const open = () => readdirSync('/proc/self/fd').length;
  // What the tests before this one opened is closing still (a child's pipes, a client's socket): counted once the
  // count holds still, before and after.
  const settled = async () => {
    let last = open();
    for (let same = 0; same < 3;) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = open();
      same = now === last ? same + 1 : 0;
      last = now;
    }
    return last;
  };
  const before = await settled();
  const server = await startRedis();
  await server.stop({ keepDir: true });
  await server.start();
  await server.stop();
  assert.equal(await settled(), before);
});

test('deployments under different prefixes share one Redis without seeing each other', async (t) => {
  const blue = await store(t);
  const green = await store(t);
  await blue.record('http://blue.example/', ['colour'], { cache: true });
  assert.deepEqual(await green.urls('colour'), []);
  assert.equal(await green.cached('http://blue.example/'), undefined);
  await assert.rejects(openStore({ store: redis.url, storePrefix: '{all}' }), { code: 'NS_ERR_INVALID_OPTION' });
  await assert.rejects(openStore({ store: 'http://127.0.0.1:6379' }), { code: 'NS_ERR_INVALID_OPTION' });
});

test('the private Redis requires its random password, kept off its command line', async (t) => {
  const password = decodeURIComponent(new URL(redis.url).password);
  assert.ok(password.length >= 20, 'a random password is in the URL');
  const anonymous = createClient({ url: `redis://127.0.0.1:${redis.port}` });
  anonymous.on('error', () => {});
  t.after(() => anonymous.destroy());
  await anonymous.connect().catch(() => {});
  await assert.rejects(anonymous.sendCommand(['GET', 'x']), /NOAUTH/);
  const cmdline = readFileSync(`/proc/${redis.pid()}/cmdline`, 'utf8');
  assert.doesNotMatch(cmdline, new RegExp(password));
});

test('credentials Redis refuses fail the start with NS_ERR_STORE_AUTH, the password not printed', async (t) => {
  const guarded = await startRedis({ args: ['--requirepass', 'right-one'] });
  t.after(() => guarded.stop());
  const url = `redis://:not-it@127.0.0.1:${guarded.port}`;
  await assert.rejects(openStore({ store: url }), (error: NodescaleError) => {
    assert.equal(error.code, 'NS_ERR_STORE_AUTH');
    assert.doesNotMatch(error.message, /not-it/);
    return true;
  });
  const right = await store(t, { store: `redis://:right-one@127.0.0.1:${guarded.port}` });
  assert.equal(right.status(), 'ok');
  // A database Redis does not have fails the start at once too (it was retried forever, degraded).
  await assert.rejects(
    openStore({ store: `redis://:right-one@127.0.0.1:${guarded.port}/99` }),
    (error: NodescaleError) => {
      assert.equal(error.code, 'NS_ERR_INVALID_OPTION');
      assert.match(error.message, /has no database 99/);
      assert.doesNotMatch(error.message, /right-one/);
      return true;
    },
  );
});

test('single flight: stores sharing Redis run one extraction of a URL; the others get its tags, or its error', async (t) => {
  const prefix = `flight${process.pid}`;
  const stores = [await store(t, { storePrefix: prefix }), await store(t, { storePrefix: prefix })];
  let runs = 0;
  const extract = async () => {
    runs++;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return ['answer'];
  };
  const results = await Promise.all([0, 1, 0, 1].map((i) => stores[i]!.once('http://one.example/', extract)));
  assert.deepEqual(results, [['answer'], ['answer'], ['answer'], ['answer']]);
  assert.equal(runs, 1);
  // A failed extraction fails its waiters with the same code, and releases the URL.
  const failing = async () => {
    runs++;
    await new Promise((resolve) => setTimeout(resolve, 200));
    throw new NodescaleError('NS_ERR_FETCH_FAILED', 'HTTP 404');
  };
  const failed = await Promise.allSettled([0, 1].map((i) => stores[i]!.once('http://gone.example/', failing)));
  assert.equal(runs, 2);
  for (const outcome of failed)
    assert.equal(outcome.status === 'rejected' && outcome.reason.code, 'NS_ERR_FETCH_FAILED');
});

test('single flight: a worker that dies holding the lock delays the others by the lock time, no longer', async (t) => {
  const s = await store(t, { storePrefix: 'dead-owner' });
  // A lock that nobody renews, as a SIGKILLed worker leaves it.
  const raw = createClient({ url: redis.url });
  await raw.connect();
  await raw.sendCommand(['SET', 'dead-owner:lock:http://orphan.example/', 'gone', 'PX', '500']);
  await raw.close();
  let runs = 0;
  const tags = await s.once('http://orphan.example/', async () => {
    runs++;
    return ['taken-over'];
  });
  assert.deepEqual(tags, ['taken-over']);
  assert.equal(runs, 1);
});

for (const outage of ['stopped', 'frozen'] as const)
  test(`Redis ${outage} under load: tags(url) keeps answering, urls(tag) fails with its code, health degraded; back without a restart`, async (t) => {
    const pages = await countingServer(t, (req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE(req.url!.includes('comet') ? 'comet' : 'planet')),
    );
    const api = await startTaggerServer({
      port: 0,
      compute: 'pool',
      threads: 1,
      store: redis.url,
      storePrefix: `outage-${outage}`,
      corpusUrl: 'http://127.0.0.1:1',
      allow: ['127.0.0.1'],
      runtime: { logger: () => {}, shutdown: false, postMortem: false, overload: false },
    });
    t.after(() => api.close());
    const query = async (q: string) => {
      const res = await fetch(`${api.url}/graphql?query=${encodeURIComponent(q)}`);
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body: (await res.json()) as { data?: Record<string, unknown>; errors?: { extensions?: { code?: string } }[] },
      };
    };
    const tagsOf = (n: number) => query(`{ tags(url: "${pages.url}comet-${n}") }`);
    assert.deepEqual((await tagsOf(0)).body.data, { tags: ['comet'] });
    assert.deepEqual((await query('{ urls(tag: "comet") }')).body.data, { urls: [`${pages.url}comet-0`] });

    // What a dashboard subscribed to the store's channels hears: degraded once, then recovered.
    const heard: string[] = [];
    const onDegraded = (message: unknown) => heard.push(`degraded ${(message as { store: string }).store}`);
    const onRecovered = () => heard.push('recovered');
    subscribe(CHANNELS.storeDegraded, onDegraded);
    subscribe(CHANNELS.storeRecovered, onRecovered);
    t.after(() => {
      unsubscribe(CHANNELS.storeDegraded, onDegraded);
      unsubscribe(CHANNELS.storeRecovered, onRecovered);
    });

    // Load: a steady stream of new URLs while Redis goes away.
    let n = 1;
    let failures = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        const { body } = await tagsOf(n++);
        if (body.data?.tags === undefined) failures++;
      }
    })();
    // Stopped: connections refused. Frozen (SIGSTOP): connections accepted by the kernel, commands never answered.
    const pid = redis.pid()!;
    if (outage === 'stopped') await redis.stop({ keepDir: true });
    else {
      process.kill(pid, 'SIGSTOP');
      t.after(() => process.kill(pid, 'SIGCONT'));
    }
    await waitUntil(async () => api.tagger.store.status() === 'degraded', 'the store is degraded');
    const during = n;
    await waitUntil(() => n > during + 5, 'tags(url) answers while Redis is down');
    const urls = await query('{ urls(tag: "comet") }');
    assert.equal(urls.body.errors?.[0]?.extensions?.code, 'NS_ERR_STORE_UNAVAILABLE');
    // The whole operation failed for a retryable reason: a 503 with Retry-After, which a balancer understands.
    assert.deepEqual([urls.status, urls.retryAfter], [503, '1']);
    const health = await query('{ health { status store indexedUrls } }');
    assert.equal(health.status, 200, 'an operation that answers is a 200');
    assert.deepEqual(health.body.data, { health: { status: 'degraded', store: 'redis', indexedUrls: null } });

    if (outage === 'stopped') await redis.start();
    else process.kill(pid, 'SIGCONT');
    await waitUntil(async () => api.tagger.store.status() === 'ok', 'the store is back');
    const back = n;
    await waitUntil(() => n > back + 3, 'more tags after Redis is back');
    running = false;
    await load;
    assert.equal(failures, 0, 'every tags(url) answered');
    assert.deepEqual(heard, [`degraded ${redactUrl(redis.url)}`, 'recovered']);
    // Stopped, Redis came back empty (no persistence); frozen, it kept its index: what was tagged since is indexed.
    const again = (await query('{ urls(tag: "comet") }')).body.data?.urls as string[];
    assert.ok(again.length >= 3, `indexed again after the outage: ${again.length}`);
    assert.deepEqual((await query('{ health { status } }')).body.data, { health: { status: 'ok' } });
  });

test('a page whose tags change, tagged again once its cache expires: the index drops it from its old tags', async (t) => {
  let topic = 'comet';
  const pages = await countingServer(t, (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE(topic)),
  );
  const api = await startTaggerServer({
    port: 0,
    compute: 'inline',
    store: redis.url,
    storePrefix: 'changing',
    cacheTtlMs: 200,
    corpusUrl: 'http://127.0.0.1:1',
    allow: ['127.0.0.1'],
    runtime: { logger: () => {}, shutdown: false, postMortem: false, overload: false },
  });
  t.after(() => api.close());
  const page = `${pages.url}news.html`;
  assert.deepEqual(await api.tagger.tags(page), ['comet']);
  assert.deepEqual(await api.tagger.urls('comet'), [page]);
  topic = 'planet';
  assert.deepEqual(await api.tagger.tags(page), ['comet'], 'cached while the TTL lasts');
  await waitUntil(async () => (await api.tagger.tags(page))[0] === 'planet', 'tagged again after the TTL');
  assert.deepEqual(await api.tagger.urls('comet'), []);
  assert.deepEqual(await api.tagger.urls('planet'), [page]);
});

test('a reply that arrived while the event loop was blocked past the deadline is taken, not failed as a timeout', async (t) => {
  const s = await store(t, { storeTimeoutMs: 200 });
  await s.record('http://lag.example/', ['lag'], { cache: false });
  const answer = s.urls('lag');
  // After node-redis has written the command (it writes on setImmediate), the loop is blocked past the deadline:
  // Redis answers meanwhile. The timer runs before that reply is read, in the next turn of the loop.
  await new Promise((resolve) => setImmediate(resolve));
  const end = Date.now() + 600;
  while (Date.now() < end);
  assert.deepEqual(await answer, ['http://lag.example/']);
  assert.equal(s.status(), 'ok');
});

test('store options out of range are refused with the option named, for either store', async () => {
  for (const store of ['embedded', redis.url])
    for (const [option, value] of [
      ['cacheSize', -5],
      ['maxIndexedUrls', 'x'],
      ['cacheTtlMs', 0],
      ['storeTimeoutMs', 2 ** 31],
    ] as const)
      await assert.rejects(openStore({ store, [option]: value } as StoreOptions), {
        code: 'NS_ERR_INVALID_OPTION',
        message: new RegExp(`^${option} must be a whole number from`),
      });
});

test("retag.lua writes only when the tags it was told are the URL's: another worker's change in between is no loss", async (t) => {
  const client = createClient({ url: redis.url, scripts: SCRIPTS });
  await client.connect();
  t.after(() => client.close());
  const base = `{retag-${process.pid}}`;
  const keys = { urls: `${base}:urls`, tags: `${base}:tags`, urlKey: `${base}:url:u`, url: 'u' };
  const tagged = (tag: string) => ({ tag, key: `${base}:tagged:${tag}` });
  assert.equal(await client.retag({ ...keys, now: 1, added: ['a', 'b'].map(tagged), read: [] }), 1);
  // Read before another worker re-tagged it: refused, nothing written.
  assert.equal(await client.retag({ ...keys, now: 2, added: [tagged('c')], read: [] }), -1);
  assert.deepEqual((await client.sMembers(keys.urlKey)).sort(), ['a', 'b']);
  // With the tags it has: written, the old ones no longer lead to it.
  assert.equal(await client.retag({ ...keys, now: 3, added: [tagged('c')], read: ['a', 'b'].map(tagged) }), 1);
  assert.deepEqual(await client.sMembers(keys.urlKey), ['c']);
  assert.deepEqual(await client.sMembers(keys.tags), ['c']);
  assert.deepEqual(await client.zRange(`${base}:tagged:a`, 0, -1), []);
  assert.equal(await client.retag({ ...keys, now: 'drop', added: [], read: [tagged('c')] }), 0);
  assert.equal(await client.exists([keys.urlKey, `${base}:tagged:c`, keys.tags, keys.urls]), 0);
});
