/**
 * The Redis store's Lua scripts, through node-redis's own `defineScript` (it hashes each script once, sends EVALSHA,
 * and EVAL when a server has not seen it). The Lua lives in lua/*.lua, each file saying its KEYS and ARGV, as BullMQ
 * keeps its scripts: every key a script touches is a KEY (Redis Cluster routes, and ACLs check, by them), never a
 * name built inside the script.
 */
import { readFileSync } from 'node:fs';
import { defineScript, type CommandParser } from '@redis/client';

const lua = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
const toNumber = (reply: unknown) => Number(reply);

export interface Retag {
  /** The index's keys: {P}:urls, {P}:tags, and the URL's own, {P}:url:<url>. */
  urls: string;
  tags: string;
  urlKey: string;
  url: string;
  /** When it was tagged (ms), or 'drop' to remove the URL. */
  now: number | 'drop';
  /** The new tags, each with its key ({P}:tagged:<tag>). */
  added: readonly { tag: string; key: string }[];
  /** The tags read from Redis before, each with its key: the script checks they are still the URL's. */
  read: readonly { tag: string; key: string }[];
}

export const SCRIPTS = {
  /** lua/retag.lua: a URL's tags set (or the URL dropped); -1 when its tags changed since they were read. */
  retag: defineScript({
    SCRIPT: lua('retag.lua'),
    parseCommand(parser: CommandParser, r: Retag) {
      const keys = [r.urls, r.tags, r.urlKey, ...r.added.map((a) => a.key), ...r.read.map((o) => o.key)];
      parser.push(String(keys.length));
      for (const key of keys) parser.pushKey(key);
      parser.push(
        r.url,
        String(r.now),
        String(r.added.length),
        ...r.added.map((a) => a.tag),
        ...r.read.map((o) => o.tag),
      );
    },
    transformReply: toNumber,
  }),
  /** lua/renew-lock.lua: 1 when the lock was still ours and is extended. */
  renewLock: defineScript({
    SCRIPT: lua('renew-lock.lua'),
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, lock: string, token: string, ms: number) {
      parser.pushKey(lock);
      parser.push(token, String(ms));
    },
    transformReply: toNumber,
  }),
  /** lua/release-lock.lua: 1 when the lock was still ours and is deleted. */
  releaseLock: defineScript({
    SCRIPT: lua('release-lock.lua'),
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, lock: string, token: string) {
      parser.pushKey(lock);
      parser.push(token);
    },
    transformReply: toNumber,
  }),
};
