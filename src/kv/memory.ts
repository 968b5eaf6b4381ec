import type { BucketDecision, ClaimDecision, KeyValueStore, StreamEntry } from "./kv.ts";

type Entry =
  | { type: "string"; value: string; expiresAt: number }
  | { type: "bucket"; level: number; ts: number; expiresAt: number }
  | { type: "stream"; entries: StreamEntry[]; lastMs: number; lastSeq: number };

// Expired keys nobody reads again (idempotency records, buckets of departed clients) would pile up
// with lazy expiry alone, so every this-many writes the whole map is swept.
const SWEEP_EVERY_WRITES = 1024;

/**
 * The KeyValueStore of embedded mode: one process, so atomicity comes free from running each
 * operation synchronously. Keys share one namespace like Redis (a stream key is not a string key).
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly kind = "memory" as const;
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private writes = 0;
  private closed = false;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs);
    this.open();
    if (this.live(key)) return false;
    this.write(key, { type: "string", value, expiresAt: this.now() + ttl });
    return true;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    this.open();
    this.write(key, { type: "string", value, expiresAt: this.now() + ttl });
  }

  async get(key: string): Promise<string | null> {
    this.open();
    const entry = this.live(key);
    if (!entry) return null;
    if (entry.type !== "string") throw wrongType(key);
    return entry.value;
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return Promise.all(keys.map((key) => this.get(key)));
  }

  async delete(key: string): Promise<void> {
    this.open();
    this.entries.delete(key);
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    this.open();
    const entry = this.live(key);
    if (!entry) return false;
    if (entry.type !== "string") throw wrongType(key);
    if (entry.value !== value) return false;
    this.entries.delete(key);
    return true;
  }

  async extendIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs);
    this.open();
    const entry = this.live(key);
    if (!entry) return false;
    if (entry.type !== "string") throw wrongType(key);
    if (entry.value !== value) return false;
    entry.expiresAt = this.now() + ttl;
    return true;
  }

  async leakyBucket(
    key: string,
    opts: { ratePerSecond: number; burst: number; cost?: number },
  ): Promise<BucketDecision> {
    this.open();
    return this.meter(key, opts);
  }

  async claimAndMeter(
    key: string,
    value: string,
    ttlMs: number,
    bucket: { key: string; ratePerSecond: number; burst: number; cost?: number },
  ): Promise<ClaimDecision> {
    const ttl = checkTtl(ttlMs);
    checkBucketOptions(bucket);
    this.open();
    const entry = this.live(key);
    if (entry) {
      if (entry.type !== "string") throw wrongType(key);
      return { acquired: false, current: entry.value };
    }
    const bucketEntry = this.live(bucket.key);
    if (bucketEntry && bucketEntry.type !== "bucket") throw wrongType(bucket.key);
    const decision = this.meter(bucket.key, bucket);
    if (decision.allowed) this.write(key, { type: "string", value, expiresAt: this.now() + ttl });
    return { acquired: true, bucket: decision };
  }

  private meter(key: string, opts: { ratePerSecond: number; burst: number; cost?: number }): BucketDecision {
    const { ratePerSecond: rate, burst, cost } = checkBucketOptions(opts);
    const now = this.now();
    const entry = this.live(key);
    if (entry && entry.type !== "bucket") throw wrongType(key);
    // Mirrors the Redis script in redis.ts; keep the two in step.
    let level = entry ? Math.max(0, entry.level - (Math.max(0, now - entry.ts) / 1000) * rate) : 0;
    let retryAfterMs = 0;
    const allowed = level + cost <= burst;
    if (allowed) level += cost;
    else retryAfterMs = Math.ceil(((level + cost - burst) / rate) * 1000);
    const ttl = Math.ceil((burst / rate) * 1000) + 1000;
    this.write(key, { type: "bucket", level, ts: now, expiresAt: now + ttl });
    return {
      allowed,
      remaining: Math.max(0, Math.floor(burst - level)),
      retryAfterMs,
      resetMs: Math.ceil((level / rate) * 1000),
    };
  }

  async streamAdd(stream: string, payload: string): Promise<string> {
    this.open();
    let entry = this.entries.get(stream);
    if (entry && entry.type !== "stream") throw wrongType(stream);
    if (!entry) {
      entry = { type: "stream", entries: [], lastMs: 0, lastSeq: -1 };
      this.write(stream, entry);
    }
    // Like XADD *: the clock's millisecond, never going backwards, with a sequence within it.
    const ms = Math.max(Math.floor(this.now()), entry.lastMs);
    entry.lastSeq = ms === entry.lastMs ? entry.lastSeq + 1 : 0;
    entry.lastMs = ms;
    const id = `${ms}-${entry.lastSeq}`;
    entry.entries.push({ id, payload });
    return id;
  }

  async streamRange(stream: string, count: number): Promise<StreamEntry[]> {
    this.open();
    return this.stream(stream)
      .slice(0, Math.max(0, count))
      .map((e) => ({ ...e }));
  }

  async streamDelete(stream: string, ids: string[]): Promise<void> {
    this.open();
    const entry = this.entries.get(stream);
    if (!entry) return;
    if (entry.type !== "stream") throw wrongType(stream);
    const gone = new Set(ids);
    // The stream key itself survives (as in Redis), so ids keep increasing after it empties.
    entry.entries = entry.entries.filter((e) => !gone.has(e.id));
  }

  async streamLength(stream: string): Promise<number> {
    this.open();
    return this.stream(stream).length;
  }

  async ping(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  private open(): void {
    if (this.closed) throw new Error("key-value store is closed");
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.type !== "stream" && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private stream(key: string): StreamEntry[] {
    const entry = this.entries.get(key);
    if (!entry) return [];
    if (entry.type !== "stream") throw wrongType(key);
    return entry.entries;
  }

  private write(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    if (++this.writes % SWEEP_EVERY_WRITES === 0) {
      for (const k of [...this.entries.keys()]) this.live(k);
    }
  }
}

function wrongType(key: string): Error {
  return new Error(`WRONGTYPE key ${key} holds another kind of value`);
}

/** Redis PX takes a positive whole number of ms; shared by both stores so they refuse alike. */
export function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be > 0, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}

/**
 * A cost above the burst could never fit, and a retryAfterMs for it would have callers wait
 * forever, so it is refused as a programming error instead (both stores).
 */
export function checkBucketOptions(opts: { ratePerSecond: number; burst: number; cost?: number }): {
  ratePerSecond: number;
  burst: number;
  cost: number;
} {
  const { ratePerSecond, burst, cost = 1 } = opts;
  if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
    throw new RangeError(`ratePerSecond must be > 0, got ${ratePerSecond}`);
  }
  if (!Number.isFinite(burst) || burst <= 0) throw new RangeError(`burst must be > 0, got ${burst}`);
  if (!Number.isFinite(cost) || cost < 0 || cost > burst) {
    throw new RangeError(`cost must be between 0 and burst (${burst}), got ${cost}`);
  }
  return { ratePerSecond, burst, cost };
}
