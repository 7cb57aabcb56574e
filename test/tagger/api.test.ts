import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { startCorpusServer } from '../../src/corpus/server.ts';
import { parseTaggerArgs } from '../../src/cli/tagger.ts';
import { startTaggerServer } from '../../src/tagger/server.ts';

async function start(t: TestContext, compute: 'pool' | 'inline' = 'pool') {
  const corpus = await startCorpusServer({ port: 0 });
  // A page server for the bad cases: not HTML, huge, slow.
  const odd = http.createServer((req, res) => {
    if (req.url === '/json') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (req.url === '/huge')
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(`<p>${'word '.repeat(600_000)}</p>`);
    if (req.url === '/slow')
      return void setTimeout(
        () => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>late</p>'),
        2000,
      ).unref();
    res.writeHead(302, { location: req.url ?? '/' }).end();
  });
  await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
  // Shedding is not under test here (shedding.test.ts): on a loaded machine a stalled loop would shed a request.
  const api = await startTaggerServer({
    port: 0,
    compute,
    // Threads are the pool's: the inline transport has none (and refuses the option).
    ...(compute === 'pool' ? { threads: 1 } : {}),
    corpusUrl: corpus.url,
    allow: ['127.0.0.1'],
    fetchTimeoutMs: 500,
    runtime: { logger: () => {}, shutdown: false, postMortem: false, overload: false },
  });
  t.after(async () => {
    await api.close();
    await corpus.close();
    odd.closeAllConnections();
    odd.close();
  });
  const oddUrl = `http://127.0.0.1:${(odd.address() as { port: number }).port}`;
  const post = async (body: unknown, type = 'application/json') => {
    const res = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as {
        data?: Record<string, unknown> | null;
        errors?: { message: string; extensions?: { code?: string } }[];
      },
    };
  };
  return { api, corpus, oddUrl, post };
}

const codeOf = (body: { errors?: { extensions?: { code?: string } }[] }) => body.errors?.[0]?.extensions?.code;

test('tags(url) fetches, extracts and indexes; urls(tag) answers from the index; GET and application/graphql work too', async (t) => {
  const { api, corpus, post } = await start(t);
  const page = `${corpus.url}/articles/astronomy-1.html`;
  const tagged = await post({ query: 'query Tags($url: String!) { tags(url: $url) }', variables: { url: page } });
  assert.equal(tagged.status, 200);
  assert.ok((tagged.body.data!.tags as string[]).includes('telescope'));
  const urls = await fetch(
    `${api.url}/graphql?query=${encodeURIComponent('{ urls(tag: "telescope") health { status compute indexedUrls } }')}`,
  );
  assert.deepEqual(await urls.json(), {
    data: { urls: [page], health: { status: 'ok', compute: 'pool', indexedUrls: 1 } },
  });
  const raw = await post(`{ urls(tag: "galaxy") }`, 'application/graphql');
  assert.deepEqual(raw.body, { data: { urls: [page] } });
  // The benchmark routes.
  const tags = (await (await fetch(`${api.url}/benchmark/get-tags`)).json()) as { url: string; tags: string[] };
  assert.equal(tags.url, page);
  assert.ok(tags.tags.includes('telescope'));
  assert.deepEqual(await (await fetch(`${api.url}/benchmark/get-urls`)).json(), { tag: 'telescope', urls: [page] });
  assert.equal((await fetch(`${api.url}/nowhere`)).status, 404);
  // And the runtime is in front: metrics count the requests by route.
  assert.match(
    await (await fetch(`${api.url}/metrics`)).text(),
    /nodescale_http_request_duration_seconds_count\{[^}]*status="200"[^}]*\} \d+/,
  );
});

test('refused, non-HTML, huge, slow and looping pages are GraphQL errors with codes; the pool keeps serving', async (t) => {
  const { corpus, oddUrl, post } = await start(t);
  const tags = (url: string) => post({ query: 'query($u: String!) { tags(url: $u) }', variables: { u: url } });
  const cases: [string, string][] = [
    ['http://169.254.169.254/latest/meta-data/', 'NS_ERR_FETCH_REFUSED'],
    ['http://10.0.0.1/', 'NS_ERR_FETCH_REFUSED'],
    ['ftp://example.org/', 'NS_ERR_FETCH_URL'],
    [`${oddUrl}/json`, 'NS_ERR_FETCH_NOT_HTML'],
    [`${oddUrl}/huge`, 'NS_ERR_FETCH_TOO_LARGE'],
    [`${oddUrl}/slow`, 'NS_ERR_FETCH_TIMEOUT'],
    [`${oddUrl}/loop`, 'NS_ERR_FETCH_REDIRECTS'],
    [`${corpus.url}/missing.html`, 'NS_ERR_FETCH_FAILED'],
  ];
  for (const [url, code] of cases) {
    const { status, body } = await tags(url);
    assert.equal(status, 200, url);
    assert.equal(body.data, null);
    assert.equal(codeOf(body), code, `${url}: ${JSON.stringify(body)}`);
  }
  const ok = await tags(`${corpus.url}/articles/cooking-1.html`);
  assert.ok((ok.body.data!.tags as string[]).length > 0, 'still serving');
});

/** `fragment f0 on Query { ...f1 ...f1 } … fragment fN on Query { health { status } }`: 2^N paths through N+1 fragments. */
function doublingFragments(levels: number): string {
  const fragments = Array.from({ length: levels }, (_, i) => `fragment f${i} on Query { ...f${i + 1} ...f${i + 1} }`);
  return `{ ...f0 } ${fragments.join(' ')} fragment f${levels} on Query { health { status } }`;
}

// If the complexity check walked every path, the 150-level query would not finish before the sun goes out: the
// timeout turns that into a failure rather than a hung suite. No timing is asserted.
test(
  'a query whose fragments each spread the next twice is refused in time linear in its size; health answers meanwhile',
  { timeout: 120_000 },
  async (t) => {
    const { api, post } = await start(t, 'inline');
    for (const levels of [22, 150]) {
      const query = doublingFragments(levels);
      const [res, health] = await Promise.all([post({ query }), fetch(`${api.url}/healthz`)]);
      assert.equal(res.status, 400, `${levels} levels`);
      assert.equal(
        codeOf(res.body),
        'NS_ERR_GRAPHQL_TOO_COMPLEX',
        `${levels} levels: ${JSON.stringify(res.body).slice(0, 300)}`,
      );
      assert.equal(health.status, 200);
    }
    // Spread twice but within the limits: measured right, not refused.
    assert.deepEqual((await post({ query: doublingFragments(3) })).body, { data: { health: { status: 'ok' } } });
    assert.equal(
      codeOf((await post({ query: doublingFragments(6) })).body),
      'NS_ERR_GRAPHQL_TOO_COMPLEX',
      '2^6 = 64 fields',
    );
  },
);

test('malformed, invalid, deep, wide and oversized queries are 4xx GraphQL errors with codes', async (t) => {
  const { api, post } = await start(t, 'inline');
  const cases: [unknown, string, number, string?][] = [
    [{ query: '{ tags(url: ' }, 'NS_ERR_GRAPHQL_INVALID', 400],
    [{ query: '{ nope }' }, 'NS_ERR_GRAPHQL_INVALID', 400],
    [{ query: '{ tags }' }, 'NS_ERR_GRAPHQL_INVALID', 400],
    [{ query: 'query($u: String!) { tags(url: $u) }' }, 'NS_ERR_GRAPHQL_INVALID', 400],
    [
      { query: '{ __schema { types { fields { type { ofType { ofType { name } } } } } } }' },
      'NS_ERR_GRAPHQL_TOO_COMPLEX',
      400,
    ],
    [
      { query: `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: urls(tag: "x")`).join(' ')} }` },
      'NS_ERR_GRAPHQL_TOO_COMPLEX',
      400,
    ],
    [{ query: `{ urls(tag: "${'x'.repeat(9000)}") }` }, 'NS_ERR_GRAPHQL_TOO_COMPLEX', 400],
    [{ query: 'fragment A on Query { ...B } fragment B on Query { ...A } { ...A }' }, 'NS_ERR_GRAPHQL_INVALID', 400],
    [{}, 'NS_ERR_GRAPHQL_BAD_REQUEST', 400],
    [{ query: '{ health { status } }', variables: [1] }, 'NS_ERR_GRAPHQL_BAD_REQUEST', 400],
    ['{"query": ', 'NS_ERR_GRAPHQL_BAD_REQUEST', 400],
    ['[1, 2]', 'NS_ERR_GRAPHQL_BAD_REQUEST', 400],
    ['{ health { status } }', 'NS_ERR_GRAPHQL_MEDIA_TYPE', 415, 'text/plain'],
  ];
  for (const [body, code, status, type] of cases) {
    const res = await post(body, type);
    assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal(
      codeOf(res.body),
      code,
      `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(res.body).slice(0, 300)}`,
    );
  }
  const put = await fetch(`${api.url}/graphql`, { method: 'PUT', body: '{}' });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, POST');
  assert.equal(codeOf((await put.json()) as Parameters<typeof codeOf>[0]), 'NS_ERR_GRAPHQL_METHOD');
  for (const operation of ['mutation { tags(url: "x") }', 'subscription { health { status } }']) {
    const res = await post({ query: operation });
    assert.equal(res.status, 400, operation);
    assert.equal(codeOf(res.body), 'NS_ERR_GRAPHQL_INVALID', `${operation}: ${JSON.stringify(res.body)}`);
  }
  const huge = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ health { status } } # ${'x'.repeat(100_000)}` }),
  });
  assert.equal(huge.status, 413, 'the runtime refuses bodies over the limit');
  assert.deepEqual((await post({ query: '{ health { status compute } }' })).body, {
    data: { health: { status: 'ok', compute: 'inline' } },
  });
});

test('the benchmark route fetches its configured corpus on loopback without --allow; clients still cannot reach loopback', async (t) => {
  const corpus = await startCorpusServer({ port: 0 });
  const api = await startTaggerServer({
    port: 0,
    compute: 'inline',
    corpusUrl: corpus.url,
    runtime: { logger: () => {}, shutdown: false, postMortem: false },
  });
  t.after(async () => {
    await api.close();
    await corpus.close();
  });
  const bench = await fetch(`${api.url}/benchmark/get-tags`);
  assert.equal(bench.status, 200);
  assert.ok(((await bench.json()) as { tags: string[] }).tags.length > 0);
  const res = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ tags(url: "${corpus.url}/articles/astronomy-1.html") }` }),
  });
  assert.equal(codeOf((await res.json()) as { errors?: { extensions?: { code?: string } }[] }), 'NS_ERR_FETCH_REFUSED');
});

test('a corpus URL that is not an http(s) URL is refused before anything starts', async () => {
  for (const corpusUrl of ['notaurl', 'ftp://127.0.0.1/', 'http://no-such-host.invalid/']) {
    await assert.rejects(
      startTaggerServer({
        port: 0,
        compute: 'inline',
        corpusUrl,
        runtime: { logger: () => {}, shutdown: false, postMortem: false },
      }),
      (e: unknown) => (e as { code?: string }).code === 'NS_ERR_INVALID_OPTION',
      corpusUrl,
    );
  }
});

test('urls(tag) is paged: 100 URLs by default, first/after page on; a query weighs its pages, so a popular tag cannot be asked for 32 times', async (t) => {
  const { api, post } = await start(t, 'inline');
  // 1 200 pages carry the tag (indexed directly: what tags(url) records).
  const all = Array.from({ length: 1_200 }, (_, i) => `http://site.example/page-${String(i).padStart(4, '0')}`);
  for (const url of [...all].reverse()) await api.tagger.store.record(url, ['popular'], { cache: false });

  const first = await post({ query: '{ urls(tag: "popular") }' });
  assert.deepEqual(first.body, { data: { urls: all.slice(0, 100) } });
  // The next pages, after the last URL of each: every URL once, in order, and a short last page.
  const seen: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await post({
      query: 'query Page($after: String) { urls(tag: "popular", first: 500, after: $after) }',
      variables: { after },
    });
    assert.equal(page.status, 200, JSON.stringify(page.body).slice(0, 200));
    const urls = page.body.data!.urls as string[];
    seen.push(...urls);
    if (urls.length < 500) break;
    after = urls.at(-1)!;
  }
  assert.deepEqual(seen, all);

  // Ten default pages are 1 000 URLs, the limit; the 32 aliases of a popular tag are refused before any runs.
  const aliases = (n: number, args = '') =>
    `{ ${Array.from({ length: n }, (_, i) => `a${i}: urls(tag: "popular"${args})`).join(' ')} }`;
  const ten = await post({ query: aliases(10) });
  assert.equal(ten.status, 200);
  assert.equal(Object.values(ten.body.data!).flat().length, 1_000);
  for (const [body, code] of [
    [{ query: aliases(32) }, 'NS_ERR_GRAPHQL_TOO_COMPLEX'],
    [{ query: aliases(11) }, 'NS_ERR_GRAPHQL_TOO_COMPLEX'],
    [{ query: aliases(3, ', first: 400') }, 'NS_ERR_GRAPHQL_TOO_COMPLEX'],
    // Through variables, and through a fragment spread twice.
    [
      {
        query: 'query($n: Int) { a: urls(tag: "popular", first: $n) b: urls(tag: "x", first: $n) }',
        variables: { n: 501 },
      },
      'NS_ERR_INVALID_PAGE',
    ],
    [
      {
        query: 'query($n: Int) { a: urls(tag: "popular", first: $n) b: urls(tag: "x", first: $n) }',
        variables: { n: 500 },
      },
      null,
    ],
    [
      {
        query:
          'query($n: Int = 400) { ...F ...G } fragment F on Query { a: urls(tag: "p", first: $n) } fragment G on Query { ...F b: urls(tag: "q", first: $n) }',
      },
      'NS_ERR_GRAPHQL_TOO_COMPLEX',
    ],
    // A variable named like a property every object inherits is still read from the request's own variables.
    [
      {
        query: `query($constructor: Int) { ${Array.from({ length: 11 }, (_, i) => `a${i}: urls(tag: "p", first: $constructor)`).join(' ')} }`,
      },
      'NS_ERR_GRAPHQL_TOO_COMPLEX',
    ],
    [{ query: '{ urls(tag: "popular", first: 0) }' }, 'NS_ERR_INVALID_PAGE'],
    [{ query: '{ urls(tag: "popular", first: 501) }' }, 'NS_ERR_INVALID_PAGE'],
  ] as const) {
    const res = await post(body);
    const what = `${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(res.body).slice(0, 300)}`;
    if (code === null) {
      assert.equal(res.status, 200, what);
      assert.equal((res.body.data!.a as string[]).length, 500, what);
    } else {
      assert.equal(res.status, 400, what);
      assert.equal(codeOf(res.body), code, what);
    }
  }

  // The benchmark route pages the same way.
  const route = (query: string) => fetch(`${api.url}/benchmark/get-urls?tag=popular&${query}`);
  assert.deepEqual(await (await route(`first=2&after=${all[9]}`)).json(), { tag: 'popular', urls: all.slice(10, 12) });
  const refused = await route('first=600');
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'NS_ERR_INVALID_PAGE');
});

test("an option of another compute transport is refused with the tagger's own name for it", async () => {
  await assert.rejects(startTaggerServer({ port: 0, compute: 'inline', threads: 2 }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'threads is an option of compute pool, not of inline',
  });
  await assert.rejects(startTaggerServer({ port: 0, compute: 'pool', broker: 'amqp://127.0.0.1:1' }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'broker is an option of compute amqp, not of pool',
  });
});

test("the tagger's options are resolved in one place: a typo names the nearest option, a value out of range its own", async () => {
  const refused = async (options: object, message: RegExp) =>
    assert.rejects(startTaggerServer({ port: 0, ...options }), { code: 'NS_ERR_INVALID_OPTION', message });
  await refused({ fetchTimeout: 100 }, /^unknown option fetchTimeout; did you mean fetchTimeoutMs\?$/);
  await refused({ maxRedirects: -1 }, /^maxRedirects must be a whole number from 0 to 100, got -1$/);
  await refused({ fetchTimeoutMs: '5s' }, /^fetchTimeoutMs must be a whole number/);
  await refused({ maxPageBytes: 0 }, /^maxPageBytes must be a whole number/);
  await refused({ extractDeadlineMs: 2 ** 31 }, /^extractDeadlineMs must be a whole number/);
  await refused({ cacheSize: -5 }, /^cacheSize must be a whole number from 0/);
  await refused({ compute: 'carrier-pigeon' }, /^compute must be inline, pool or amqp/);
});

test('the corpus serves a long page on ?repeat=K (2 to 800): its paragraphs K times over; anything else, the page', async (t) => {
  const corpus = await startCorpusServer({ port: 0 });
  t.after(() => corpus.close());
  const page = (query: string) => fetch(`${corpus.url}/articles/astronomy-1.html${query}`).then((r) => r.text());
  const paragraphs = (html: string) => html.match(/<p>/g)?.length ?? 0;
  const one = await page('');
  const long = await page('?repeat=5');
  assert.ok(paragraphs(one) > 2);
  assert.equal(paragraphs(long), paragraphs(one) * 5);
  assert.ok(long.endsWith(one.slice(one.lastIndexOf('</p>') + 4)), 'the rest of the page kept');
  for (const query of ['?repeat=801', '?repeat=abc', '?repeat=1', '?repeat=-3']) assert.equal(await page(query), one);
});

test('nodescale tagger --stall-capture DUR turns stall capture on at that threshold; off without it', () => {
  assert.deepEqual(parseTaggerArgs(['--stall-capture', '750ms']).runtime?.stall, { thresholdMs: 750 });
  assert.equal(parseTaggerArgs([]).runtime?.stall, undefined);
});
