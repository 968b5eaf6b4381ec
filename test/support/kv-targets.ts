import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { KeyValueStore } from "../../src/kv/kv.ts";
import { MemoryKeyValueStore } from "../../src/kv/memory.ts";
import { RedisKeyValueStore } from "../../src/kv/redis.ts";
import { missingBackend } from "./backends.ts";

export interface OpenedKv {
  kv: KeyValueStore;
  /** The key prefix this store writes under ("" for memory, which needs none). */
  prefix: string;
  /**
   * Another client onto the same state (same server, same prefix), for proving that instances
   * share buckets and locks. Redis only: separate memory stores share nothing by design.
   * Closed by cleanup.
   */
  connectAgain?: () => KeyValueStore;
  /** Deletes every key open created and closes every client. */
  cleanup: () => Promise<void>;
}

export interface KvTarget {
  name: "memory" | "redis";
  /** `now`: the store's clock (ms) instead of the real one: every bucket decision (both stores), TTLs too (memory). */
  open: (opts?: { now?: () => number }) => Promise<OpenedKv>;
}

/**
 * The key-value stores every KV-backed test runs against: the in-process store always, a real Redis
 * too when REDIS_URL is set. Use as `describe.each(kvTargets())("… on $name", ({ open }) => …)`.
 */
export function kvTargets(): KvTarget[] {
  const targets: KvTarget[] = [
    {
      name: "memory",
      open: async (opts = {}) => {
        const kv = new MemoryKeyValueStore({ now: opts.now });
        return { kv, prefix: "", cleanup: () => kv.close() };
      },
    },
  ];
  const url = process.env.REDIS_URL;
  if (url) targets.push({ name: "redis", open: (opts) => openRedis(url, opts?.now) });
  else missingBackend("redis", "REDIS_URL");
  return targets;
}

async function openRedis(url: string, now?: () => number): Promise<OpenedKv> {
  // The Redis is shared with CI and other test files: a random prefix per open keeps runs apart,
  // and cleanup removes only what is under it.
  const prefix = `t:${randomBytes(6).toString("hex")}:`;
  const clients: KeyValueStore[] = [];
  const connect = () => {
    const kv = new RedisKeyValueStore({ url, keyPrefix: prefix, now });
    clients.push(kv);
    return kv;
  };
  const kv = connect();
  const cleanup = async () => {
    try {
      await deleteByPrefix(url, prefix);
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
    }
  };
  try {
    await kv.ping();
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { kv, prefix, connectAgain: connect, cleanup };
}

export async function deleteByPrefix(url: string, prefix: string): Promise<void> {
  // A client without keyPrefix: SCAN's MATCH is not prefixed but the keys it returns are full
  // names, which a prefixing client's DEL would prefix a second time.
  const raw = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await raw.connect();
    let cursor = "0";
    do {
      const [next, keys] = await raw.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await raw.del(...keys);
    } while (cursor !== "0");
  } finally {
    raw.disconnect();
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
