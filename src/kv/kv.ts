/**
 * The shared key-value store: locks, cached responses, rate-limit buckets and the write buffer
 * used while the database is unreachable. Redis in production (state shared by every instance),
 * an in-process implementation in embedded mode. Keys are given without the deployment's prefix;
 * implementations add it.
 */
export interface KeyValueStore {
  readonly kind: "redis" | "memory";

  /** SET key value NX PX ttlMs: true when this call created the key. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | null>;
  /** Several keys in one round trip (MGET); null where a key is absent, in the order asked. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  delete(key: string): Promise<void>;
  /** Deletes only while the value is still `value` (releasing a lock we hold). */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /** Sets a new TTL only while the value is still `value` (renewing a lock we hold). */
  extendIfEquals(key: string, value: string, ttlMs: number): Promise<boolean>;

  /**
   * Leaky bucket as a meter, atomically: the bucket drains at `ratePerSecond`; a request adds
   * `cost` and is refused when that would overflow `burst`. Time is the KV's own clock, so every
   * instance agrees (both stores accept a clock of the caller's for tests).
   */
  leakyBucket(
    key: string,
    opts: { ratePerSecond: number; burst: number; cost?: number },
  ): Promise<BucketDecision>;

  /**
   * An idempotency lock and a rate-limit charge in one step (one round trip on Redis): SET key
   * value NX PX ttlMs; when that created the key, `bucket` is charged as by leakyBucket, and a
   * refusal deletes the key again (a refused request holds no lock). When the key exists, its
   * value is returned and nothing is charged: a replay or a duplicate costs no token.
   */
  claimAndMeter(
    key: string,
    value: string,
    ttlMs: number,
    bucket: { key: string; ratePerSecond: number; burst: number; cost?: number },
  ): Promise<ClaimDecision>;

  /** Append-only log with ids that sort by insertion (a Redis stream). */
  streamAdd(stream: string, payload: string): Promise<string>;
  /** Oldest first, at most `count` entries. */
  streamRange(stream: string, count: number): Promise<StreamEntry[]>;
  streamDelete(stream: string, ids: string[]): Promise<void>;
  streamLength(stream: string): Promise<number>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface BucketDecision {
  allowed: boolean;
  /** Whole requests that would still be accepted right now. */
  remaining: number;
  /** When refused: milliseconds until this request would fit. 0 when allowed. */
  retryAfterMs: number;
  /** Milliseconds until the bucket is empty again. */
  resetMs: number;
}

export type ClaimDecision = { acquired: true; bucket: BucketDecision } | { acquired: false; current: string };

export interface StreamEntry {
  id: string;
  payload: string;
}
