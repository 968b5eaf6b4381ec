import { Redis } from "ioredis";
import type { BucketDecision, ClaimDecision, KeyValueStore, StreamEntry } from "./kv.ts";
import { checkBucketOptions, checkTtl } from "./memory.ts";
import { CLAIM_AND_METER, DELETE_IF_EQUALS, EXTEND_IF_EQUALS, LEAKY_BUCKET } from "./redis-scripts.ts";

export interface RedisKeyValueStoreOptions {
  url: string;
  /** Prepended to every key, e.g. "imgup:prod:"; keeps deployments (and test runs) apart on one Redis. */
  keyPrefix: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Connection errors while reconnecting in the background; without it they are dropped silently. */
  onError?: (err: Error) => void;
  /**
   * Tests only: the leaky bucket's clock (ms). Production leaves it unset so buckets meter by the
   * Redis server's TIME: one clock for every instance, whereas callers' clocks skew (an instance
   * running ahead would drain everyone's buckets early, one behind would refuse too long). A test
   * gives every instance it starts the same clock, so no skew arises there.
   */
  now?: () => number;
}

// With a caller's clock: long enough for any test, short enough not to keep keys around for good.
const CALLER_CLOCK_MIN_TTL_MS = 10 * 60_000;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;
type Script2 = (key1: string, key2: string, ...args: (string | number)[]) => Promise<unknown>;

/**
 * KeyValueStore on Redis (ioredis). Built to fail fast: with the offline queue off, a command
 * issued while the connection is down rejects at once rather than waiting for a reconnect, so
 * callers can fail open; ioredis keeps reconnecting in the background.
 */
export class RedisKeyValueStore implements KeyValueStore {
  readonly kind = "redis" as const;
  private readonly client: Redis;
  private readonly connectTimeoutMs: number;
  private readonly now: (() => number) | undefined;
  private wasReady = false;
  private closed = false;

  constructor(opts: RedisKeyValueStoreOptions) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.now = opts.now;
    this.client = new Redis(opts.url, {
      keyPrefix: opts.keyPrefix,
      connectTimeout: this.connectTimeoutMs,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    // Without a listener ioredis prints every failed reconnect attempt to the console.
    this.client.on("error", (err: Error) => opts.onError?.(err));
    this.client.on("ready", () => {
      this.wasReady = true;
    });
    // ioredis prefixes the first numberOfKeys arguments of a defined script like any other key.
    this.client.defineCommand("imgupDeleteIfEquals", { numberOfKeys: 1, lua: DELETE_IF_EQUALS });
    this.client.defineCommand("imgupExtendIfEquals", { numberOfKeys: 1, lua: EXTEND_IF_EQUALS });
    this.client.defineCommand("imgupLeakyBucket", { numberOfKeys: 1, lua: LEAKY_BUCKET });
    this.client.defineCommand("imgupClaimAndMeter", { numberOfKeys: 2, lua: CLAIM_AND_METER });
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const px = checkTtl(ttlMs);
    await this.ready();
    return (await this.client.set(key, value, "PX", px, "NX")) === "OK";
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const px = checkTtl(ttlMs);
    await this.ready();
    await this.client.set(key, value, "PX", px);
  }

  async get(key: string): Promise<string | null> {
    await this.ready();
    return this.client.get(key);
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    await this.ready();
    return this.client.mget(...keys);
  }

  async delete(key: string): Promise<void> {
    await this.ready();
    await this.client.del(key);
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    await this.ready();
    return (await this.runScript("imgupDeleteIfEquals", key, value)) === 1;
  }

  async extendIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    const px = checkTtl(ttlMs);
    await this.ready();
    return (await this.runScript("imgupExtendIfEquals", key, value, px)) === 1;
  }

  async leakyBucket(
    key: string,
    opts: { ratePerSecond: number; burst: number; cost?: number },
  ): Promise<BucketDecision> {
    const { ratePerSecond, burst, cost } = checkBucketOptions(opts);
    await this.ready();
    // Microseconds like TIME; whole numbers, so Lua's tonumber reads them exactly.
    const clock = this.now ? [Math.round(this.now() * 1000), CALLER_CLOCK_MIN_TTL_MS] : [];
    const reply = (await this.runScript(
      "imgupLeakyBucket",
      key,
      ratePerSecond,
      burst,
      cost,
      ...clock,
    )) as number[];
    return toDecision(reply);
  }

  async claimAndMeter(
    key: string,
    value: string,
    ttlMs: number,
    bucket: { key: string; ratePerSecond: number; burst: number; cost?: number },
  ): Promise<ClaimDecision> {
    const px = checkTtl(ttlMs);
    const { ratePerSecond, burst, cost } = checkBucketOptions(bucket);
    await this.ready();
    const clock = this.now ? [Math.round(this.now() * 1000), CALLER_CLOCK_MIN_TTL_MS] : [];
    const fn = (this.client as unknown as Record<string, Script2>).imgupClaimAndMeter as Script2;
    const reply = (await fn.call(
      this.client,
      key,
      bucket.key,
      value,
      px,
      ratePerSecond,
      burst,
      cost,
      ...clock,
    )) as [number, ...unknown[]];
    if (Number(reply[0]) !== 1) return { acquired: false, current: String(reply[1] ?? "") };
    return { acquired: true, bucket: toDecision(reply.slice(1) as number[]) };
  }

  async streamAdd(stream: string, payload: string): Promise<string> {
    await this.ready();
    const id = await this.client.xadd(stream, "*", "p", payload);
    if (id === null) throw new Error("XADD returned no id");
    return id;
  }

  async streamRange(stream: string, count: number): Promise<StreamEntry[]> {
    await this.ready();
    const rows = await this.client.xrange(stream, "-", "+", "COUNT", count);
    return rows.map(([id, fields]) => ({ id, payload: fieldValue(fields, "p") }));
  }

  async streamDelete(stream: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ready();
    await this.client.xdel(stream, ...ids);
  }

  async streamLength(stream: string): Promise<number> {
    await this.ready();
    return this.client.xlen(stream);
  }

  async ping(): Promise<void> {
    await this.ready();
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      // quit needs a live connection; disconnect also stops the background reconnects.
      this.client.disconnect();
    }
  }

  /**
   * With the offline queue off, a command sent before the first connection is up would be refused
   * even though Redis is fine, so until the client has been ready once, wait for the connection
   * (bounded by the connect timeout). Once an attempt has failed, or after the first success, a
   * down connection fails the command immediately.
   */
  private async ready(): Promise<void> {
    if (this.closed) throw new Error("key-value store is closed");
    const status = this.client.status;
    if (this.wasReady || status === "ready") return;
    if (status !== "wait" && status !== "connecting" && status !== "connect") {
      throw new Error(`Redis is unreachable (${status})`);
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.client.off("ready", onReady);
        this.client.off("error", onError);
        this.client.off("end", onEnd);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onError = (err: Error) => done(err);
      const onEnd = () => done(new Error("Redis connection closed"));
      const timer = setTimeout(
        () => done(new Error(`Redis not connected within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      this.client.on("ready", onReady);
      this.client.on("error", onError);
      this.client.on("end", onEnd);
    });
  }

  private runScript(
    name: "imgupDeleteIfEquals" | "imgupExtendIfEquals" | "imgupLeakyBucket",
    key: string,
    ...args: (string | number)[]
  ): Promise<unknown> {
    const fn = (this.client as unknown as Record<string, Script>)[name] as Script;
    return fn.call(this.client, key, ...args);
  }
}

function toDecision(reply: number[]): BucketDecision {
  const [allowed, remaining, retryAfterMs, resetMs] = reply.map(Number);
  return {
    allowed: allowed === 1,
    remaining: Math.max(0, remaining ?? 0),
    retryAfterMs: retryAfterMs ?? 0,
    resetMs: resetMs ?? 0,
  };
}

function fieldValue(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1] as string;
  }
  return "";
}
