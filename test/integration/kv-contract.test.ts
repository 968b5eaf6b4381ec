import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KeyValueStore } from "../../src/kv/kv.ts";
import { MemoryKeyValueStore } from "../../src/kv/memory.ts";
import { RedisKeyValueStore } from "../../src/kv/redis.ts";
import { eventually } from "../support/harness.ts";
import { kvTargets, type OpenedKv } from "../support/kv-targets.ts";
import { TestClock } from "../support/test-clock.ts";

// Bucket decisions are checked on a clock the test moves (both stores take one), so counts and
// times are exact however slowly a loaded machine runs the calls.
const BUCKET = { ratePerSecond: 2, burst: 5 };

function streamIdOrder(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split("-").map(BigInt);
  const [bm = 0n, bs = 0n] = b.split("-").map(BigInt);
  return am === bm ? Number(as - bs) : Number(am - bm);
}

describe.each(kvTargets())("KeyValueStore contract on $name", (target) => {
  let opened: OpenedKv;
  let kv: KeyValueStore;
  const extra: OpenedKv[] = [];

  let clock: TestClock;
  // Stores on the test's clock, for the bucket tests; closed by afterEach.
  const onClock = async () => {
    const o = await target.open({ now: clock.now });
    extra.push(o);
    return o;
  };

  beforeEach(async () => {
    clock = new TestClock();
    opened = await target.open();
    kv = opened.kv;
  });

  afterEach(async () => {
    await Promise.allSettled(extra.splice(0).map((o) => o.cleanup()));
    await opened.cleanup();
  });

  it("reports its kind", () => {
    expect(kv.kind).toBe(target.name);
  });

  it("setIfAbsent creates once, then refuses until the key expires", async () => {
    expect(await kv.setIfAbsent("lock", "a", 10_000)).toBe(true);
    expect(await kv.setIfAbsent("lock", "b", 10_000)).toBe(false);
    expect(await kv.get("lock")).toBe("a");

    expect(await kv.setIfAbsent("short", "a", 50)).toBe(true);
    await eventually(async () => (await kv.get("short")) === null);
    expect(await kv.setIfAbsent("short", "b", 10_000)).toBe(true);
    expect(await kv.get("short")).toBe("b");
  });

  it("set overwrites, get reads, delete removes, and set's ttl expires", async () => {
    expect(await kv.get("missing")).toBeNull();
    await kv.set("k", "one", 10_000);
    await kv.set("k", "two", 10_000);
    expect(await kv.get("k")).toBe("two");
    await kv.delete("k");
    expect(await kv.get("k")).toBeNull();
    await kv.delete("k");

    await kv.set("brief", "x", 50);
    await eventually(async () => (await kv.get("brief")) === null);
  });

  it("rejects a ttl that is not positive", async () => {
    await expect(kv.set("k", "v", 0)).rejects.toThrow(RangeError);
    await expect(kv.setIfAbsent("k", "v", -1)).rejects.toThrow(RangeError);
  });

  it("deleteIfEquals deletes only while the value matches", async () => {
    await kv.set("lock", "mine", 10_000);
    expect(await kv.deleteIfEquals("lock", "theirs")).toBe(false);
    expect(await kv.get("lock")).toBe("mine");
    expect(await kv.deleteIfEquals("lock", "mine")).toBe(true);
    expect(await kv.get("lock")).toBeNull();
    expect(await kv.deleteIfEquals("lock", "mine")).toBe(false);
  });

  it("extendIfEquals sets a new TTL only while the value matches", async () => {
    await kv.set("lock", "mine", 60_000);
    await kv.set("other", "theirs", 60_000);
    // A TTL shorter than the one it had shows the new TTL took effect without waiting a long one out.
    expect(await kv.extendIfEquals("other", "mine", 50)).toBe(false);
    expect(await kv.extendIfEquals("lock", "mine", 50)).toBe(true);
    await eventually(async () => (await kv.get("lock")) === null);
    expect(await kv.get("other")).toBe("theirs");
    expect(await kv.extendIfEquals("lock", "mine", 60_000)).toBe(false);
  });

  it("50 concurrent setIfAbsent on one key: exactly one wins", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => kv.setIfAbsent("race", `w${i}`, 10_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await kv.get("race")).toBe(`w${results.indexOf(true)}`);
  });

  it("leakyBucket admits a burst, refuses the next with an exact retryAfterMs, then refills", async () => {
    const { kv } = await onClock();
    const first = await kv.leakyBucket("bucket", BUCKET);
    expect(first).toMatchObject({ allowed: true, remaining: 4, retryAfterMs: 0 });
    expect(first.resetMs).toBe(500);

    // All at once: the rest of the burst plus one, to show admission is atomic under concurrency.
    const decisions = await Promise.all(Array.from({ length: 5 }, () => kv.leakyBucket("bucket", BUCKET)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(4);
    const refused = decisions.find((d) => !d.allowed);
    expect(refused).toBeDefined();
    if (!refused) return;
    expect(refused).toMatchObject({ remaining: 0, retryAfterMs: 500, resetMs: 2500 });

    clock.advance(499);
    expect((await kv.leakyBucket("bucket", BUCKET)).allowed).toBe(false);
    clock.advance(1);
    const later = await kv.leakyBucket("bucket", BUCKET);
    expect(later.allowed).toBe(true);
    expect(later.retryAfterMs).toBe(0);
  });

  it("claimAndMeter takes the lock and charges the bucket once; a held lock answers its value, uncharged", async () => {
    const { kv } = await onClock();
    const bucket = { key: "claim-bucket", ...BUCKET };
    const first = await kv.claimAndMeter("claim", "mine", 60_000, bucket);
    expect(first).toEqual({
      acquired: true,
      bucket: { allowed: true, remaining: 4, retryAfterMs: 0, resetMs: 500 },
    });
    expect(await kv.get("claim")).toBe("mine");
    // Held: the value comes back and no token is spent (the bucket still has 4).
    expect(await kv.claimAndMeter("claim", "theirs", 60_000, bucket)).toEqual({
      acquired: false,
      current: "mine",
    });
    expect((await kv.leakyBucket("claim-bucket", { ...BUCKET, cost: 0 })).remaining).toBe(4);

    // 50 at once on a fresh key: one lock, one charge.
    const race = await Promise.all(
      Array.from({ length: 50 }, (_, i) => kv.claimAndMeter("race2", `w${i}`, 60_000, bucket)),
    );
    expect(race.filter((r) => r.acquired)).toHaveLength(1);
    expect((await kv.leakyBucket("claim-bucket", { ...BUCKET, cost: 0 })).remaining).toBe(3);
  });

  it("claimAndMeter leaves no lock when the bucket refuses, and shares the bucket with leakyBucket", async () => {
    const { kv } = await onClock();
    const bucket = { key: "claim-full", ...BUCKET };
    for (let i = 0; i < 5; i++) expect((await kv.leakyBucket("claim-full", BUCKET)).allowed).toBe(true);
    const refused = await kv.claimAndMeter("claim-r", "v", 60_000, bucket);
    expect(refused).toEqual({
      acquired: true,
      bucket: { allowed: false, remaining: 0, retryAfterMs: 500, resetMs: 2500 },
    });
    expect(await kv.get("claim-r")).toBeNull();
    clock.advance(500);
    const later = await kv.claimAndMeter("claim-r", "v", 60_000, bucket);
    expect(later).toMatchObject({ acquired: true, bucket: { allowed: true } });
    expect(await kv.get("claim-r")).toBe("v");
    await expect(kv.claimAndMeter("claim-x", "v", 0, bucket)).rejects.toThrow(RangeError);
  });

  it("leakyBucket on the store's own clock: a burst, then a refill as time really passes", async () => {
    // A unit drains in 1000 s, so nothing a loaded machine does makes these counts inexact.
    const slow = { ratePerSecond: 0.001, burst: 3 };
    const decisions = await Promise.all(Array.from({ length: 5 }, () => kv.leakyBucket("slow", slow)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(3);
    const refused = decisions.find((d) => !d.allowed);
    expect(refused?.retryAfterMs).toBeGreaterThan(0);
    expect(refused?.retryAfterMs).toBeLessThanOrEqual(1_000_000);
    // A fast bucket refills by itself: wait for it rather than for a guessed time.
    const fast = { ratePerSecond: 20, burst: 1 };
    expect((await kv.leakyBucket("fast", fast)).allowed).toBe(true);
    await eventually(async () => (await kv.leakyBucket("fast", fast)).allowed);
  });

  it("leakyBucket weighs requests by cost", async () => {
    const { kv } = await onClock();
    expect(await kv.leakyBucket("costly", { ...BUCKET, cost: 3 })).toMatchObject({
      allowed: true,
      remaining: 2,
    });
    const refused = await kv.leakyBucket("costly", { ...BUCKET, cost: 3 });
    expect(refused.allowed).toBe(false);
    // 1 unit over: one drain interval away.
    expect(refused.retryAfterMs).toBe(500);
    expect(await kv.leakyBucket("costly", { ...BUCKET, cost: 2 })).toMatchObject({
      allowed: true,
      remaining: 0,
    });
    await expect(kv.leakyBucket("costly", { ...BUCKET, cost: 6 })).rejects.toThrow(RangeError);
    await expect(kv.leakyBucket("costly", { ratePerSecond: 0, burst: 5 })).rejects.toThrow(RangeError);
  });

  it.runIf(target.name === "redis")(
    "two client instances with one prefix share buckets and locks",
    async () => {
      const shared = await onClock();
      const kv = shared.kv;
      const other = shared.connectAgain?.();
      if (!other) throw new Error("redis target must offer connectAgain");
      for (let i = 0; i < 3; i++) expect((await kv.leakyBucket("shared", BUCKET)).allowed).toBe(true);
      for (let i = 0; i < 2; i++) expect((await other.leakyBucket("shared", BUCKET)).allowed).toBe(true);
      expect((await other.leakyBucket("shared", BUCKET)).allowed).toBe(false);
      expect((await kv.leakyBucket("shared", BUCKET)).allowed).toBe(false);
      // One clock (in production the server's TIME): what drains is seen by both clients.
      clock.advance(500);
      expect((await other.leakyBucket("shared", BUCKET)).allowed).toBe(true);
      expect((await kv.leakyBucket("shared", BUCKET)).allowed).toBe(false);

      expect(await other.setIfAbsent("lock", "b", 10_000)).toBe(true);
      expect(await kv.setIfAbsent("lock", "a", 10_000)).toBe(false);
      expect(await kv.deleteIfEquals("lock", "b")).toBe(true);
    },
  );

  it("keys are isolated between stores (by prefix on Redis)", async () => {
    const second = await target.open();
    extra.push(second);
    await kv.set("k", "first", 10_000);
    expect(await second.kv.get("k")).toBeNull();
    expect(await second.kv.setIfAbsent("k", "second", 10_000)).toBe(true);
    expect(await kv.get("k")).toBe("first");
    await kv.leakyBucket("b", { ratePerSecond: 1, burst: 1 });
    expect((await second.kv.leakyBucket("b", { ratePerSecond: 1, burst: 1 })).allowed).toBe(true);
    await kv.streamAdd("s", "x");
    expect(await second.kv.streamLength("s")).toBe(0);
  });

  it.runIf(target.name === "redis")("writes every key, script keys included, under the prefix", async () => {
    await kv.set("plain", "v", 10_000);
    await kv.leakyBucket("bucket", BUCKET);
    await kv.streamAdd("stream", "p");
    const url = process.env.REDIS_URL as string;
    const raw = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      expect(await raw.get(`${opened.prefix}plain`)).toBe("v");
      expect(await raw.type(`${opened.prefix}bucket`)).toBe("hash");
      expect(await raw.type(`${opened.prefix}stream`)).toBe("stream");
      expect(await raw.exists("bucket", "stream", "plain")).toBe(0);
      const ttl = await raw.pttl(`${opened.prefix}bucket`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3500);
    } finally {
      raw.disconnect();
    }
  });

  it("streams keep insertion order, page oldest first, delete by id and count", async () => {
    expect(await kv.streamLength("log")).toBe(0);
    expect(await kv.streamRange("log", 10)).toEqual([]);
    const ids: string[] = [];
    for (const p of ["a", "b", "c", "d"]) ids.push(await kv.streamAdd("log", p));
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    expect([...ids].sort(streamIdOrder)).toEqual(ids);
    expect(new Set(ids).size).toBe(4);

    expect(await kv.streamRange("log", 10)).toEqual(
      ["a", "b", "c", "d"].map((p, i) => ({ id: ids[i], payload: p })),
    );
    expect((await kv.streamRange("log", 2)).map((e) => e.payload)).toEqual(["a", "b"]);
    expect(await kv.streamLength("log")).toBe(4);

    await kv.streamDelete("log", [ids[0] as string, ids[2] as string]);
    await kv.streamDelete("log", []);
    expect(await kv.streamLength("log")).toBe(2);
    expect((await kv.streamRange("log", 10)).map((e) => e.payload)).toEqual(["b", "d"]);

    const next = await kv.streamAdd("log", "e");
    expect(streamIdOrder(next, ids[3] as string)).toBeGreaterThan(0);
    expect(await kv.streamLength("log")).toBe(3);
  });

  it("ping answers; after close every call rejects", async () => {
    await kv.ping();
    await kv.close();
    await kv.close();
    await expect(kv.ping()).rejects.toThrow();
    await expect(kv.get("k")).rejects.toThrow();
    await expect(kv.set("k", "v", 1000)).rejects.toThrow();
    await expect(kv.setIfAbsent("k", "v", 1000)).rejects.toThrow();
    await expect(kv.leakyBucket("b", BUCKET)).rejects.toThrow();
    await expect(kv.streamAdd("s", "p")).rejects.toThrow();
  });
});

describe.runIf(process.env.REDIS_URL)("RedisKeyValueStore without a server", () => {
  it("rejects quickly instead of hanging when Redis is unreachable", async () => {
    const kv = new RedisKeyValueStore({ url: "redis://127.0.0.1:1", keyPrefix: "t:unreachable:" });
    try {
      const started = Date.now();
      await expect(kv.get("k")).rejects.toThrow();
      await expect(kv.leakyBucket("b", BUCKET)).rejects.toThrow();
      await expect(kv.ping()).rejects.toThrow();
      // Only a hang fails this: the bound is the 1 s connect timeout × 3 plus slack for a loaded machine.
      expect(Date.now() - started).toBeLessThan(1_000 * 3 + 10_000);
    } finally {
      await kv.close();
    }
  });
});

describe("MemoryKeyValueStore on a controlled clock", () => {
  it("drains buckets, expires keys and stamps stream ids by the injected clock", async () => {
    let now = 1_000_000;
    const kv = new MemoryKeyValueStore({ now: () => now });
    // Powers of two keep the float arithmetic exact, so the decisions can be compared whole.
    const opts = { ratePerSecond: 4, burst: 3 };
    expect(await kv.leakyBucket("b", opts)).toEqual({
      allowed: true,
      remaining: 2,
      retryAfterMs: 0,
      resetMs: 250,
    });
    await kv.leakyBucket("b", opts);
    await kv.leakyBucket("b", opts);
    expect(await kv.leakyBucket("b", opts)).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 250,
      resetMs: 750,
    });
    now += 125;
    expect(await kv.leakyBucket("b", opts)).toMatchObject({ allowed: false, retryAfterMs: 125 });
    now += 125;
    expect(await kv.leakyBucket("b", opts)).toEqual({
      allowed: true,
      remaining: 0,
      retryAfterMs: 0,
      resetMs: 750,
    });

    await kv.set("k", "v", 100);
    now += 99;
    expect(await kv.get("k")).toBe("v");
    now += 1;
    expect(await kv.get("k")).toBeNull();

    expect(await kv.streamAdd("s", "a")).toBe(`${now}-0`);
    expect(await kv.streamAdd("s", "b")).toBe(`${now}-1`);
    now -= 5; // a clock stepping back must not reorder ids
    expect(await kv.streamAdd("s", "c")).toBe(`${now + 5}-2`);
    await kv.close();
  });
});
