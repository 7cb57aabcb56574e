/**
 * The shared store: the tags cache and the reverse index in Redis, so that every API worker on every host answers
 * `urls(tag)` alike and a reload or a restart loses nothing. node-redis (@redis/client), the client Redis's
 * maintainers recommend for new projects (chosen by measurement too: docs/demo.md).
 *
 * Keys, all under the prefix P (`--store-prefix`, default nodescale:tagger):
 *   P:cache:<url>       the URL's tags, JSON, with a TTL (`--cache-ttl`)             one key each: spread over a cluster
 *   P:lock:<url>        who extracts the URL now (SET NX PX, renewed while it works)
 *   P:extracted         the channel on which the extraction's outcome is published
 *   {P}:tagged:<tag>    a sorted set, every score 0 so that it is ordered by URL: the URLs carrying the tag, read a
 *                       page at a time (ZRANGE … BYLEX LIMIT: O(log n + page), where SMEMBERS sent them all)
 *   {P}:url:<url>       a set: the URL's tags, so that removing a URL is O(its tags)
 *   {P}:urls            a sorted set: every indexed URL by the time it was tagged (the oldest is dropped past the bound)
 *   {P}:tags            a set: every tag that leads somewhere
 * The index's keys share the hash tag {P}: one script (lua/retag.lua, through redis-scripts.ts) updates them together,
 * atomically, which a cluster allows only within one slot, and it is given every key it touches: the URL's tags are
 * read first to name their keys, and the script writes nothing (the store reads and tries again) if another worker
 * changed them in between. The index lives on one shard; the cache and the locks spread over all of them. Past the
 * bound, the URLs tagged longest ago are dropped the same way, after the write that passed it.
 *
 * Redis is allowed to fail, and to freeze. Commands are never queued while it is away (they fail at once) and each
 * has a deadline of ours (`#command`): node-redis's own `timeout` stops counting once a command is written, so it is
 * no deadline against a Redis that stopped answering (SIGSTOP, a stalled host). When one expires the store is
 * degraded and the connection replaced, since replies come in order and one stuck reply blocks every one behind it;
 * commands fail at once until the new connection is ready, which is when Redis answers again. While degraded:
 * `cached()` is a miss, `record()` is skipped, `once()` extracts without the fleet, `urls()` throws
 * NS_ERR_STORE_UNAVAILABLE (retryable), `status()` is 'degraded'. The client reconnects by itself (backoff with
 * jitter) and everything is used again without a restart.
 */
import { randomUUID } from 'node:crypto';
import { createClient } from '@redis/client';
import { SCRIPTS } from './redis-scripts.ts';
import { parseSentinelUrl, SENTINEL_SCHEME, SentinelMaster } from './redis-sentinel.ts';
import { ERROR_CODES, invalidOption, isNodescaleError, NodescaleError, type ErrorCode } from '../errors.ts';
import { certificateHint, type ClientTls } from '../client-tls.ts';
import { CHANNELS, publish } from '../diagnostics.ts';
import { redactUrl } from '../redact.ts';
import type { Logger } from '../logger.ts';
import { type ResolvedStoreOptions, type TagStore, type UrlPage, URL_PAGE } from './store.ts';

/**
 * A connection that never queues a command while Redis is away (it fails at once). The deadline of each command is
 * ours (RedisStore#command), not node-redis's `timeout`: that one stops counting once the command is written, and
 * it fires before a reply that arrived while the event loop was blocked is read.
 */
const connection = (url: string, timeoutMs: number, tls: ClientTls | undefined) =>
  createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: Math.max(timeoutMs, 1_000), ...tls },
    scripts: SCRIPTS,
  });
type Client = ReturnType<typeof connection>;
type Outcome = { tags: string[] } | { error: { code: string; message: string } };

/** How long a lock lives without its owner renewing it: a worker that dies holding one delays the others this long. */
const LOCK_MS = 3_000;
/** How often a waiting worker checks that the lock still has an owner (a lost notification costs no more). */
const POLL_MS = 100;
/** How long a replacement connection may take to be ready before it is replaced in turn (a handshake that hangs). */
const REPLACE_AFTER_MS = 5_000;
/** How long opening waits for a first connection before starting degraded. */
const CONNECT_WAIT_MS = 5_000;
/** Redis's answers to credentials it refuses (AUTH, or a command without them). */
const AUTH_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)\b/;

/** How many times a re-tagging is tried when another worker changed the same URL's tags in between. */
const RETAG_ATTEMPTS = 3;

export class RedisStore implements TagStore {
  readonly kind = 'redis';
  #client: Client;
  #subscriber: Client;
  /** The data server's URL: the master's, which changes when Sentinel fails over. */
  #url: string;
  /** With a redis-sentinel:// URL: the sentinels, asked where the master is. */
  readonly #sentinel: SentinelMaster | null;
  readonly #tls: ClientTls | undefined;
  readonly #where: string;
  readonly #timeoutMs: number;
  readonly #prefix: string;
  readonly #index: string;
  readonly #cacheTtlMs: number;
  readonly #maxUrls: number;
  readonly #waitMs: number;
  readonly #log: Logger;
  readonly #waiters = new Map<string, Set<(outcome: Outcome | null) => void>>();
  #down = false;
  /** A command outlived its deadline: the connection was replaced, and the store is degraded until it is ready. */
  #stalled: NodeJS.Timeout | null = null;
  #closed = false;
  #opening = true;

  private constructor(
    client: Client,
    subscriber: Client,
    options: ResolvedStoreOptions & { url: string; where: string; sentinel: SentinelMaster | null },
  ) {
    this.#client = client;
    this.#subscriber = subscriber;
    this.#url = options.url;
    this.#sentinel = options.sentinel;
    this.#tls = options.storeTls;
    this.#where = options.where;
    this.#timeoutMs = options.storeTimeoutMs;
    this.#prefix = options.storePrefix;
    this.#index = `{${this.#prefix}}`;
    this.#cacheTtlMs = options.cacheTtlMs;
    this.#maxUrls = options.maxIndexedUrls;
    this.#waitMs = options.singleFlightWaitMs;
    this.#log = options.log;
    this.#watch(client);
    subscriber.on('error', () => {});
  }

  /** The listeners of a command connection: one line when Redis is lost, one when it is back. */
  #watch(client: Client): void {
    // An 'error' without a listener would throw. Each failed reconnection emits one: say it once per outage.
    client.on('error', (error: Error) => {
      if (client !== this.#client || this.#closed) return;
      // The master may have moved: the sentinels are asked now, not at the next poll.
      this.#sentinel?.check();
      if (this.#down) return;
      this.#down = true;
      // While opening, open() says what happened, once: refused (credentials, database, certificate), or degraded.
      if (this.#opening) return;
      this.#log('warn', 'store: Redis is unreachable; reconnecting', { store: this.#where, error: error.message });
      // Once an outage: a store degraded already by a stalled command is not degraded again.
      if (this.#stalled === null)
        publish(CHANNELS.storeDegraded, () => ({ store: this.#where, reason: `unreachable: ${error.message}` }));
    });
    client.on('ready', () => {
      if (client !== this.#client || (!this.#down && this.#stalled === null)) return;
      this.#down = false;
      if (this.#stalled !== null) clearTimeout(this.#stalled);
      this.#stalled = null;
      this.#log('info', 'store: Redis is back', { store: this.#where });
      publish(CHANNELS.storeRecovered, () => ({ store: this.#where }));
    });
  }

  /**
   * One command with our deadline. Past it, the connection is replaced (see the file's comment) and the command
   * fails; while the replacement is not ready, commands fail at once (disableOfflineQueue).
   */
  #command<T>(send: (client: Client) => Promise<T>): Promise<T> {
    const client = this.#client;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      // Timers run before I/O in a turn of the loop: after a block longer than the deadline, the timer would beat a
      // reply that is already in the socket. The verdict waits for that turn's I/O (setImmediate runs after it).
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (settled) return;
            settled = true;
            reject(new Error(`Redis did not answer within ${this.#timeoutMs} ms`));
            if (client === this.#client) this.#replace('a command outlived its deadline');
          }),
        this.#timeoutMs,
      );
      send(client).then(
        (reply) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** A new command connection in place of one that stopped answering; its pending commands fail with it. */
  #replace(why: string): void {
    if (this.#closed) return;
    const old = this.#client;
    if (this.#stalled === null && !this.#down) {
      this.#log('warn', `store: Redis does not answer (${why}); degraded, connection replaced`, {
        store: this.#where,
        timeoutMs: this.#timeoutMs,
      });
      publish(CHANNELS.storeDegraded, () => ({ store: this.#where, reason: why }));
    }
    if (this.#stalled !== null) clearTimeout(this.#stalled);
    // A replacement whose handshake hangs too (a host that accepts and never answers) is replaced in its turn.
    this.#stalled = setTimeout(() => this.#replace('the new connection is not ready'), REPLACE_AFTER_MS);
    this.#stalled.unref();
    const client = connection(this.#url, this.#timeoutMs, this.#tls);
    this.#client = client;
    this.#watch(client);
    client.connect().catch(() => {});
    // Its pending commands fail with it (their callers have failed already, at their deadlines).
    if (old.isOpen) old.destroy();
  }

  /**
   * Sentinel named another master: both connections go there. Commands in flight on the old one fail (as at a
   * deadline), new ones fail at once until the new connection is ready, which is when the store is used again.
   */
  #moveTo(url: string): void {
    if (this.#closed || url === this.#url) return;
    this.#log('warn', 'store: Sentinel names another master; moving to it', {
      store: this.#where,
      master: redactUrl(url),
    });
    this.#url = url;
    const subscriber = this.#subscriber;
    this.#subscriber = connection(url, this.#timeoutMs, this.#tls);
    this.#subscriber.on('error', () => {});
    const next = this.#subscriber;
    next
      .connect()
      .then(() => next.subscribe(this.#channel, (message) => this.#onOutcome(message)))
      .catch(() => {});
    if (subscriber.isOpen) subscriber.destroy();
    this.#replace(`the master moved to ${redactUrl(url)}`);
  }

  static async open(given: string, options: ResolvedStoreOptions): Promise<RedisStore> {
    const timeout = options.storeTimeoutMs;
    const tls = options.storeTls;
    // Behind Sentinel: the master's address first (no sentinel answering within the wait fails the start, saying so).
    const sentinel = given.toLowerCase().startsWith(SENTINEL_SCHEME)
      ? new SentinelMaster(parseSentinelUrl(given), timeout)
      : null;
    const url = sentinel === null ? given : await sentinel.resolve(CONNECT_WAIT_MS);
    const client = connection(url, timeout, tls);
    // Notifications come on a connection of their own (a subscribed connection can do nothing else).
    const subscriber = connection(url, timeout, tls);
    const where = redactUrl(given);
    const store = new RedisStore(client, subscriber, { ...options, url, where, sentinel });
    sentinel?.watch((master) => store.#moveTo(master));
    // Both keep trying in the background; a Redis that is down at start is a degraded store, not a failed start.
    const connected = Promise.all([
      client.connect(),
      subscriber.connect().then(() => subscriber.subscribe(store.#channel, (message) => store.#onOutcome(message))),
    ]);
    // Refused credentials, a database Redis does not have, or a certificate refused either way will not get better by
    // retrying: the start fails, with what to fix.
    let onRefused!: (error: Error) => void;
    let certificate = '';
    const refused = new Promise<'refused' | 'no-database' | 'certificate'>((resolve) => {
      onRefused = (error) => {
        if (AUTH_REFUSED.test(error.message)) resolve('refused');
        else if (/DB index is out of range/.test(error.message)) resolve('no-database');
        else if ((certificate = certificateHint(error, '--store', 'storeTls') ?? '') !== '') resolve('certificate');
      };
      client.on('error', onRefused);
    });
    const outcome = await Promise.race([
      connected.then(
        () => 'connected' as const,
        () => 'waiting' as const,
      ),
      refused,
      new Promise<'waiting'>((resolve) => setTimeout(resolve, CONNECT_WAIT_MS, 'waiting').unref()),
    ]);
    client.off('error', onRefused);
    store.#opening = false;
    if (outcome === 'refused') {
      await store.close();
      throw new NodescaleError('NS_ERR_STORE_AUTH', `Redis at ${redactUrl(url)} refused the credentials of the URL`);
    }
    if (outcome === 'certificate') {
      await store.close();
      throw new NodescaleError('NS_ERR_STORE_TLS', `cannot connect to Redis at ${redactUrl(url)}: ${certificate}`);
    }
    if (outcome === 'no-database') {
      await store.close();
      throw invalidOption(
        'store',
        `a database that Redis has (its "databases" setting; 0 to 15 by default): Redis at ${redactUrl(url)} has no database ${new URL(url).pathname.slice(1)}`,
        redactUrl(url),
      );
    }
    if (outcome === 'waiting') {
      store.#log('warn', 'store: Redis does not answer yet; starting degraded', { store: redactUrl(url) });
      publish(CHANNELS.storeDegraded, () => ({ store: store.#where, reason: 'not answering at start' }));
    }
    return store;
  }

  get #channel(): string {
    return `${this.#prefix}:extracted`;
  }

  async cached(url: string): Promise<string[] | undefined> {
    try {
      const text = await this.#command((client) => client.get(`${this.#prefix}:cache:${url}`));
      return text === null ? undefined : (JSON.parse(text) as string[]);
    } catch {
      return undefined;
    }
  }

  async record(url: string, tags: readonly string[], { cache }: { cache: boolean }): Promise<void> {
    const unique = [...new Set(tags)];
    try {
      await Promise.all([
        this.#retag(url, Date.now(), unique).then((count) => this.#evict(count)),
        cache
          ? this.#command((client) =>
              client.set(`${this.#prefix}:cache:${url}`, JSON.stringify(unique), {
                expiration: { type: 'PX', value: this.#cacheTtlMs },
              }),
            )
          : null,
      ]);
    } catch {
      // Degraded: the caller has its tags; the index catches up with the next extraction of this URL.
    }
  }

  /**
   * Sets a URL's tags in the index (or drops it: `now` 'drop'): its current tags are read, then retag.lua, which
   * names every key it touches, writes unless they changed in between. The number of URLs in the index, or null
   * when another worker kept changing them.
   */
  async #retag(url: string, now: number | 'drop', tags: readonly string[]): Promise<number | null> {
    const urlKey = `${this.#index}:url:${url}`;
    const tagged = (tag: string) => ({ tag, key: `${this.#index}:tagged:${tag}` });
    for (let attempt = 0; attempt < RETAG_ATTEMPTS; attempt++) {
      const read = await this.#command((client) => client.sMembers(urlKey));
      const count = await this.#command((client) =>
        client.retag({
          urls: `${this.#index}:urls`,
          tags: `${this.#index}:tags`,
          urlKey,
          url,
          now,
          added: tags.map(tagged),
          read: read.map(tagged),
        }),
      );
      if (count >= 0) return count;
    }
    return null;
  }

  /** Past maxIndexedUrls, the URLs tagged longest ago are dropped with their tags. */
  async #evict(count: number | null): Promise<void> {
    if (count === null || count <= this.#maxUrls) return;
    const oldest = await this.#command((client) => client.zRange(`${this.#index}:urls`, 0, count - this.#maxUrls - 1));
    for (const url of oldest) await this.#retag(url, 'drop', []);
  }

  async urls(tag: string, { first, after }: UrlPage = { first: URL_PAGE.first }): Promise<string[]> {
    const key = `${this.#index}:tagged:${tag.trim().toLowerCase()}`;
    try {
      return await this.#command((client) =>
        client.zRange(key, after === undefined ? '-' : `(${after}`, '+', {
          BY: 'LEX',
          LIMIT: { offset: 0, count: first },
        }),
      );
    } catch (error) {
      throw unavailable(error);
    }
  }

  async once(url: string, extract: () => Promise<string[]>): Promise<string[]> {
    const lock = `${this.#prefix}:lock:${url}`;
    const token = randomUUID();
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      let acquired: boolean;
      try {
        const reply = await this.#command((client) =>
          client.set(lock, token, { condition: 'NX', expiration: { type: 'PX', value: LOCK_MS } }),
        );
        acquired = reply === 'OK';
      } catch {
        return extract(); // no Redis, no fleet: this worker extracts
      }
      if (acquired) return this.#lead(url, lock, token, extract);
      if (Date.now() >= deadline) return extract();
      const outcome = await this.#follow(url, lock, deadline);
      if (outcome !== null) {
        if ('tags' in outcome) return outcome.tags;
        const { code, message } = outcome.error;
        throw new NodescaleError(Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'NS_ERR_INTERNAL', message);
      }
      // The lock is gone without a word (its owner died, or the notification was lost): cached, or try again.
      const hit = await this.cached(url);
      if (hit !== undefined) return hit;
    }
  }

  async size(): Promise<{ urls: number; tags: number } | null> {
    try {
      const [urls, tags] = await Promise.all([
        this.#command((client) => client.zCard(`${this.#index}:urls`)),
        this.#command((client) => client.sCard(`${this.#index}:tags`)),
      ]);
      return { urls, tags };
    } catch {
      return null;
    }
  }

  status(): 'ok' | 'degraded' {
    return this.#client.isReady && this.#stalled === null ? 'ok' : 'degraded';
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#sentinel?.close();
    if (this.#stalled !== null) clearTimeout(this.#stalled);
    for (const waiters of this.#waiters.values()) for (const resolve of waiters) resolve(null);
    this.#waiters.clear();
    // close() waits for the replies in flight, within the deadline (a frozen Redis never sends them); destroy() when
    // there is no connection to wait on, or past the deadline.
    await Promise.all(
      [this.#client, this.#subscriber].map(async (client) => {
        if (!client.isReady) return client.isOpen ? client.destroy() : undefined;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, this.#timeoutMs, 'late')));
        const closed = await Promise.race([
          client.close().then(
            () => 'closed',
            () => 'late',
          ),
          late,
        ]);
        clearTimeout(timer);
        if (closed === 'late' && client.isOpen) client.destroy();
      }),
    );
  }

  /** This worker extracts: it keeps its lock alive meanwhile, then tells the waiting ones and lets go. */
  async #lead(url: string, lock: string, token: string, extract: () => Promise<string[]>): Promise<string[]> {
    const renew = setInterval(
      () => void this.#command((client) => client.renewLock(lock, token, LOCK_MS)).catch(() => {}),
      LOCK_MS / 3,
    );
    renew.unref();
    let outcome: Outcome;
    try {
      const tags = await extract();
      outcome = { tags };
      return tags;
    } catch (error) {
      outcome = isNodescaleError(error)
        ? { error: { code: error.code, message: error.message } }
        : { error: { code: 'NS_ERR_INTERNAL', message: 'internal error' } };
      throw error;
    } finally {
      clearInterval(renew);
      await this.#command((client) => client.publish(this.#channel, JSON.stringify({ url, ...outcome! }))).catch(
        () => {},
      );
      await this.#command((client) => client.releaseLock(lock, token)).catch(() => {});
    }
  }

  /** Another worker extracts: its outcome, or null once its lock is gone or the wait is over. */
  #follow(url: string, lock: string, deadline: number): Promise<Outcome | null> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(url);
      if (waiters === undefined) this.#waiters.set(url, (waiters = new Set()));
      const done = (outcome: Outcome | null) => {
        clearInterval(poll);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiters.get(url) === waiters) this.#waiters.delete(url);
        resolve(outcome);
      };
      waiters.add(done);
      const poll = setInterval(() => {
        if (Date.now() >= deadline) return done(null);
        this.#command((client) => client.exists(lock)).then(
          (exists) => exists === 0 && done(null),
          () => done(null),
        );
      }, POLL_MS);
    });
  }

  #onOutcome(message: string): void {
    let parsed: { url?: unknown; tags?: string[]; error?: { code: string; message: string } };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return; // not ours
    }
    if (typeof parsed.url !== 'string') return;
    const waiters = this.#waiters.get(parsed.url);
    if (waiters === undefined) return;
    const outcome: Outcome | null = Array.isArray(parsed.tags)
      ? { tags: parsed.tags }
      : parsed.error !== undefined
        ? { error: parsed.error }
        : null;
    for (const resolve of [...waiters]) resolve(outcome);
  }
}

function unavailable(error: unknown): NodescaleError {
  const why = error instanceof Error ? error.message : String(error);
  return new NodescaleError('NS_ERR_STORE_UNAVAILABLE', `the store (Redis) cannot answer now: ${why}`, {
    cause: error,
  });
}
