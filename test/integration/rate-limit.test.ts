import { afterAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import {
  dbTargets,
  eventually,
  type KvEnvTarget,
  kvEnvTargets,
  type Running,
  startImgup,
} from "../support/harness.ts";
import { TestClock } from "../support/test-clock.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const LIMITS = { IMGUP_RATE_LIMIT_PER_SEC: "2", IMGUP_RATE_LIMIT_BURST: "5" };
const intent = { filename: "r.jpg", contentType: "image/jpeg", size: 100 };
// Each test starts its own instances (database migrations included), which on a loaded 2-core
// machine takes far longer than the default 30 s: only a hang should fail these.
const SLOW = 300_000;

// The buckets meter by a clock the test moves (it stands still otherwise), so the counts are exact
// however long a loaded machine takes to answer: no refill happens unless the test advances time.
describe.each(kvEnvTargets())("leaky-bucket rate limit on intents with the $name KV", (kvTarget) => {
  const runs: Running[] = [];
  const kvs: KvEnvTarget[] = [];
  afterAll(async () => {
    for (const r of runs) await r.stop();
    for (const k of kvs) await k.flush();
  }, SLOW);
  const start = async (kv: KvEnvTarget, clock: TestClock) => {
    const run = await startImgup(
      db.make(),
      { ...kv.env, ...LIMITS },
      { kvClock: clock.now, kvCommandTimeoutMs: SLOW },
    );
    runs.push(run);
    // Until its first connection is up, a Redis client waits at most 1 s and then the limiter fails
    // open (one more request admitted): wait for the connection, an event, before any burst.
    await eventually(() => run.imgup.kv.ping().then(() => true));
    return run;
  };
  const accepted = (results: { status: number }[]) => results.filter((r) => r.status === 201).length;

  it(
    "lets a burst through, refuses the excess with 429 and Retry-After, and refills at the rate",
    async () => {
      const kv = kvTarget.make();
      kvs.push(kv);
      const clock = new TestClock();
      const run = await start(kv, clock);
      const api = new Api(run.baseUrl, run.alice);
      const results = await Promise.all(Array.from({ length: 8 }, () => api.createIntent(intent)));
      const ok = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status === 429);
      expect(ok).toHaveLength(5);
      expect(refused).toHaveLength(3);
      expect(ok[0]?.headers.get("ratelimit-limit")).toBe("5");
      expect(ok.map((r) => Number(r.headers.get("ratelimit-remaining"))).sort()).toEqual([0, 1, 2, 3, 4]);
      expect(refused[0]?.body).toMatchObject({ code: "rate_limited", status: 429 });
      // One request over a full bucket draining 2/s fits again in half a second: rounded up, 1 s.
      expect(refused.map((r) => r.headers.get("retry-after"))).toEqual(["1", "1", "1"]);
      // Another owner has a bucket of their own.
      expect((await api.as(run.bob).createIntent(intent)).status).toBe(201);
      // Without time passing nothing drains, however long the requests above took.
      expect((await api.createIntent(intent)).status).toBe(429);
      // After Retry-After (1 s) the bucket has drained at 2/s: exactly two more fit, not five.
      clock.advance(1_000);
      expect(accepted(await Promise.all(Array.from({ length: 8 }, () => api.createIntent(intent))))).toBe(2);
      // Left alone long enough, it is empty again: the full burst.
      clock.advance(60_000);
      expect(accepted(await Promise.all(Array.from({ length: 8 }, () => api.createIntent(intent))))).toBe(5);
    },
    SLOW,
  );

  it.skipIf(kvTarget.name === "memory")(
    "shares one bucket between two instances",
    async () => {
      const kv = kvTarget.make();
      kvs.push(kv);
      // One clock for both instances, as in production they share the Redis server's TIME.
      const clock = new TestClock();
      const a = await start(kv, clock);
      const b = await start(kv, clock);
      // Same owner id on both instances (each has its own database, the bucket is keyed by owner).
      const viaA = new Api(a.baseUrl, a.alice);
      const viaB = new Api(b.baseUrl, b.alice);
      // Separate buckets would accept 5 each; one shared bucket of 5 accepts 5 in all.
      const results = await Promise.all([
        ...Array.from({ length: 10 }, () => viaA.createIntent(intent)),
        ...Array.from({ length: 10 }, () => viaB.createIntent(intent)),
      ]);
      expect(accepted(results)).toBe(5);
      expect(results.filter((r) => r.status === 429)).toHaveLength(15);
      // What drains is shared too: one second frees two places, whichever instance takes them.
      clock.advance(1_000);
      expect((await viaA.createIntent(intent)).status).toBe(201);
      expect((await viaB.createIntent(intent)).status).toBe(201);
      expect((await viaA.createIntent(intent)).status).toBe(429);
      expect((await viaB.createIntent(intent)).status).toBe(429);
    },
    SLOW,
  );
});

describe("rate limit when the KV is unreachable", () => {
  let run: Running;
  afterAll(async () => run?.stop(), SLOW);

  it(
    "fails open and counts it",
    async () => {
      run = await startImgup(db.make(), { REDIS_URL: "redis://127.0.0.1:1", ...LIMITS });
      const api = new Api(run.baseUrl, run.alice);
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await api.createIntent(intent)).status);
      expect(statuses.every((s) => s === 201)).toBe(true);
      const metrics = await api.request<string>("GET", "/metrics");
      const line = metrics.body
        .split("\n")
        .find((l) => l.startsWith('imgup_rate_limit_fail_open_total{limit="intents"}'));
      expect(Number(line?.split(" ")[1])).toBe(8);
      const ready = await api.request("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ checks: { kv: expect.not.stringMatching(/^ok$/) } });
    },
    SLOW,
  );
});
