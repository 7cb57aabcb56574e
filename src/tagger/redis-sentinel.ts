/**
 * Redis Sentinel, from the store's side: which server is the master now. The store is given the sentinels, never the
 * master (`redis-sentinel://:password@s1:26379,s2:26379,s3:26379/0#mymaster`, the form Lettuce and Spring take): it
 * asks them where the master is before it connects, asks again every second and whenever its connection fails, and
 * moves its connections when the answer changes (redis-store.ts). A failover is Sentinel's: the sentinels agree that
 * the master is down (`down-after-milliseconds`), elect one of them, promote a replica and tell the others; a client
 * learns it from any sentinel. node-redis has a Sentinel client of its own (createSentinel, a pool with a different
 * API); the store keeps its one connection, with its deadlines, and only asks the sentinels for the address.
 *
 * What a sentinel answers is input from another process: an address that is not one (a host name of odd characters,
 * a port out of range) is not followed. Each question has a deadline: a frozen sentinel (SIGSTOP) is passed over for
 * the next, as a dead one is.
 */
import { createClient } from '@redis/client';
import { invalidOption, NodescaleError } from '../errors.ts';
import { redactUrl } from '../redact.ts';

export interface SentinelUrl {
  sentinels: { host: string; port: number }[];
  /** The name the sentinels monitor the master by (the URL's fragment). */
  masterName: string;
  /** Credentials for the data servers and the sentinels alike (Sentinel's own `requirepass`). */
  username: string | undefined;
  password: string | undefined;
  db: number;
}

export const SENTINEL_SCHEME = 'redis-sentinel:';
const HOST = /^(?:[a-z0-9](?:[a-z0-9.-]{0,252})|\[[0-9a-f:.]{2,45}\])$/i;
const NAME = /^[\w.:-]{1,100}$/;

/** How often the sentinels are asked where the master is (and at once when a connection to it fails). */
export const SENTINEL_POLL_MS = 1_000;

const isPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65_535;

/** `redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master`, checked (port default 26379). */
export function parseSentinelUrl(raw: string, name = 'store'): SentinelUrl {
  const wanted = 'redis-sentinel://[:password@]host:26379[,host:26379…][/db]#master';
  const refuse = (why: string) => invalidOption(name, `${wanted} (${why})`, redactUrl(raw));
  if (!raw.toLowerCase().startsWith(`${SENTINEL_SCHEME}//`)) throw refuse('the scheme');
  let rest = raw.slice(SENTINEL_SCHEME.length + 2);
  const hash = rest.indexOf('#');
  if (hash === -1) throw refuse('the master name, after #');
  const masterName = decodeURIComponent(rest.slice(hash + 1));
  if (!NAME.test(masterName)) throw refuse('a master name of letters, digits, . _ : -');
  rest = rest.slice(0, hash);
  const at = rest.lastIndexOf('@');
  let username: string | undefined;
  let password: string | undefined;
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    username = user === '' ? undefined : user;
    password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  }
  const slash = rest.indexOf('/');
  const path = slash === -1 ? '' : rest.slice(slash + 1);
  if (!/^\d{0,2}$/.test(path)) throw refuse('a database number');
  const db = path === '' ? 0 : Number(path);
  const sentinels = (slash === -1 ? rest : rest.slice(0, slash)).split(',').map((entry) => {
    const match = /^(.*?)(?::(\d{1,5}))?$/.exec(entry)!;
    const host = match[1]!;
    const port = match[2] === undefined ? 26_379 : Number(match[2]);
    if (!HOST.test(host) || !isPort(port)) throw refuse(`a sentinel's host:port: ${JSON.stringify(entry)}`);
    return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
  });
  if (sentinels.length > 16) throw refuse('at most 16 sentinels');
  return { sentinels, masterName, username, password, db };
}

/** The master's address as a sentinel gives it, checked: [host, port] strings. Null for anything else. */
export function masterAddress(reply: unknown): { host: string; port: number } | null {
  if (!Array.isArray(reply) || reply.length !== 2) return null;
  const [host, port] = reply.map((part: unknown) =>
    typeof part === 'string' ? part : Buffer.isBuffer(part) ? part.toString() : '',
  );
  if (host === undefined || !HOST.test(host) || !/^\d{1,5}$/.test(port ?? '') || !isPort(Number(port))) return null;
  return { host, port: Number(port) };
}

/** redis://[user:password@]host:port/db: the data server's URL with the sentinel URL's credentials and database. */
export function dataUrl(url: SentinelUrl, master: { host: string; port: number }): string {
  const user = url.username === undefined ? '' : encodeURIComponent(url.username);
  const auth =
    url.password === undefined ? (user === '' ? '' : `${user}@`) : `${user}:${encodeURIComponent(url.password)}@`;
  const host = master.host.includes(':') ? `[${master.host}]` : master.host;
  return `redis://${auth}${host}:${master.port}/${url.db}`;
}

const sentinelClient = (url: SentinelUrl, index: number, timeoutMs: number) => {
  const { host, port } = url.sentinels[index]!;
  return createClient({
    socket: { host, port, connectTimeout: timeoutMs, reconnectStrategy: false },
    disableOfflineQueue: true,
    ...(url.password === undefined ? {} : { password: url.password }),
    ...(url.username === undefined ? {} : { username: url.username }),
  });
};
type Client = ReturnType<typeof sentinelClient>;

/**
 * The sentinels, asked in turn: one connection to one of them at a time, to the next when it fails or does not answer
 * within `timeoutMs`. `watch()` asks every SENTINEL_POLL_MS (and at once on `check()`), and calls back when the
 * master's address changes.
 */
export class SentinelMaster {
  readonly #url: SentinelUrl;
  readonly #timeoutMs: number;
  #index = 0;
  #client: Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<void> | null = null;
  #closed = false;
  #current: string | null = null;
  #onChange: ((url: string) => void) | null = null;

  constructor(url: SentinelUrl, timeoutMs: number) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
  }

  /** The sentinels, for messages: host:port,… */
  get where(): string {
    return this.#url.sentinels.map(({ host, port }) => `${host}:${port}`).join(',');
  }

  /**
   * The master's data URL, from the first sentinel that knows it; tried in turn, round after round, until
   * `withinMs` has passed: then NS_ERR_STORE_UNAVAILABLE, saying what the last one said.
   */
  async resolve(withinMs: number): Promise<string> {
    const deadline = Date.now() + withinMs;
    let last = 'no sentinel was asked';
    for (;;) {
      for (let i = 0; i < this.#url.sentinels.length && !this.#closed; i++) {
        try {
          const master = await this.#ask();
          if (master !== null) return (this.#current = dataUrl(this.#url, master));
          last = `sentinel ${this.#sentinelAt()} knows no master named "${this.#url.masterName}"`;
        } catch (error) {
          last = `sentinel ${this.#sentinelAt()}: ${(error as Error).message}`;
        }
        this.#next();
        if (Date.now() >= deadline) break;
      }
      if (Date.now() >= deadline || this.#closed)
        throw new NodescaleError(
          'NS_ERR_STORE_UNAVAILABLE',
          `no sentinel of ${this.where} gave the address of the master "${this.#url.masterName}": ${last}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Calls `onChange` with the master's new data URL whenever the sentinels name another one. */
  watch(onChange: (url: string) => void): void {
    this.#onChange = onChange;
    this.#timer = setInterval(() => this.check(), SENTINEL_POLL_MS);
    this.#timer.unref();
  }

  /** Asks now (once at a time): a connection to the master just failed, and a failover may be why. */
  check(): void {
    if (this.#closed || this.#checking !== null) return;
    this.#checking = this.#ask()
      .then(
        (master) => {
          if (master === null || this.#closed) return;
          const url = dataUrl(this.#url, master);
          if (url === this.#current) return;
          this.#current = url;
          this.#onChange?.(url);
        },
        () => this.#next(),
      )
      .finally(() => (this.#checking = null));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#checking?.catch(() => {});
    this.#drop();
  }

  #sentinelAt(): string {
    const { host, port } = this.#url.sentinels[this.#index]!;
    return `${host}:${port}`;
  }

  /** The next sentinel, the connection to this one dropped. */
  #next(): void {
    this.#drop();
    this.#index = (this.#index + 1) % this.#url.sentinels.length;
  }

  #drop(): void {
    const client = this.#client;
    this.#client = null;
    if (client?.isOpen) client.destroy();
  }

  /** SENTINEL GET-MASTER-ADDR-BY-NAME on the current sentinel, within the deadline (connecting included). */
  async #ask(): Promise<{ host: string; port: number } | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([this.#askNow(), late]);
    } catch (error) {
      this.#drop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #askNow(): Promise<{ host: string; port: number } | null> {
    if (this.#client === null) {
      const client = sentinelClient(this.#url, this.#index, this.#timeoutMs);
      // One that fails is dropped at the next question; an 'error' without a listener would throw.
      client.on('error', () => {});
      client.on('end', () => {
        if (this.#client === client) this.#client = null;
      });
      this.#client = client;
      await client.connect();
    }
    const reply = await this.#client.sendCommand(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.#url.masterName]);
    return masterAddress(reply);
  }
}
