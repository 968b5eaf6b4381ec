import { afterAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { dbTargets, type KvEnvTarget, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const LIMITS = { IMGUP_RATE_LIMIT_PER_SEC: "2", IMGUP_RATE_LIMIT_BURST: "5" };
const intent = { filename: "r.jpg", contentType: "image/jpeg", size: 100 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whole tokens a 2/s bucket can have drained since t0 (rounded up). */
const drained = (t0: number) => Math.ceil(((Date.now() - t0) / 1000) * 2);

describe.each(kvEnvTargets())("leaky-bucket rate limit on intents with the $name KV", (kvTarget) => {
  const runs: Running[] = [];
  const kvs: KvEnvTarget[] = [];
  afterAll(async () => {
    for (const r of runs) await r.stop();
    for (const k of kvs) await k.flush();
  });
  const start = async (kv: KvEnvTarget) => {
    const run = await startImgup(db.make(), { ...kv.env, ...LIMITS });
    runs.push(run);
    return run;
  };

  it("lets a burst through, refuses the excess with 429 and Retry-After, and refills at the rate", async () => {
    const kv = kvTarget.make();
    kvs.push(kv);
    const run = await start(kv);
    const api = new Api(run.baseUrl, run.alice);
    // The bucket (burst 5) drains 2 tokens/s while requests are in flight; on a loaded machine that
    // can be a few, so the upper bound is the burst plus what the measured time allows.
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 8 }, () => api.createIntent(intent)));
    const accepted = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 429);
    expect(accepted.length).toBeGreaterThanOrEqual(5);
    expect(accepted.length).toBeLessThanOrEqual(5 + drained(t0));
    expect(accepted.length + refused.length).toBe(8);
    expect(accepted[0]?.headers.get("ratelimit-limit")).toBe("5");
    expect(Math.min(...accepted.map((r) => Number(r.headers.get("ratelimit-remaining"))))).toBe(0);
    expect(refused[0]?.body).toMatchObject({ code: "rate_limited", status: 429 });
    expect(refused[0]?.headers.get("retry-after")).toBe("1");
    // Another owner has a bucket of their own.
    expect((await api.as(run.bob).createIntent(intent)).status).toBe(201);
    // After Retry-After the bucket has drained at 2/s: about two more fit, not five.
    const t1 = Date.now();
    await sleep(1_100);
    const after = await Promise.all(Array.from({ length: 8 }, () => api.createIntent(intent)));
    const refilled = after.filter((r) => r.status === 201).length;
    expect(refilled).toBeGreaterThanOrEqual(2);
    expect(refilled).toBeLessThanOrEqual(drained(t1) + 1);
  });

  it.skipIf(kvTarget.name === "memory")("shares one bucket between two instances", async () => {
    const kv = kvTarget.make();
    kvs.push(kv);
    const a = await start(kv);
    const b = await start(kv);
    // Same owner id on both instances (each has its own database, the bucket is keyed by owner).
    const viaA = new Api(a.baseUrl, a.alice);
    const viaB = new Api(b.baseUrl, b.alice);
    // Separate buckets would accept 10 each; one shared bucket of 5 accepts 5 plus what drained.
    const t0 = Date.now();
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => viaA.createIntent(intent)),
      ...Array.from({ length: 10 }, () => viaB.createIntent(intent)),
    ]);
    const accepted = results.filter((r) => r.status === 201).length;
    expect(accepted).toBeGreaterThanOrEqual(5);
    expect(accepted).toBeLessThanOrEqual(5 + drained(t0));
    expect(results.filter((r) => r.status === 429).length).toBe(20 - accepted);
  });
});

describe("rate limit when the KV is unreachable", () => {
  let run: Running;
  afterAll(async () => run?.stop());

  it("fails open and counts it", async () => {
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
  });
});
