import { afterAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { dbTargets, type KvEnvTarget, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const LIMITS = { IMGUP_RATE_LIMIT_PER_SEC: "2", IMGUP_RATE_LIMIT_BURST: "5" };
const intent = { filename: "r.jpg", contentType: "image/jpeg", size: 100 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await api.createIntent(intent));
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 429, 429, 429]);
    expect(results[0]?.headers.get("ratelimit-limit")).toBe("5");
    expect(results.slice(0, 5).map((r) => Number(r.headers.get("ratelimit-remaining")))).toEqual([
      4, 3, 2, 1, 0,
    ]);
    const refused = results[5];
    expect(refused?.body).toMatchObject({ code: "rate_limited", status: 429 });
    expect(refused?.headers.get("retry-after")).toBe("1");
    // Another owner has a bucket of their own.
    expect((await api.as(run.bob).createIntent(intent)).status).toBe(201);
    // 2 per second drain: after 1.1 s two more fit, a third does not.
    await sleep(1_100);
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await api.createIntent(intent)).status);
    expect(after).toEqual([201, 201, 429]);
  });

  it.skipIf(kvTarget.name === "memory")("shares one bucket between two instances", async () => {
    const kv = kvTarget.make();
    kvs.push(kv);
    const a = await start(kv);
    const b = await start(kv);
    // Same owner id on both instances (each has its own database, the bucket is keyed by owner).
    const viaA = new Api(a.baseUrl, a.alice);
    const viaB = new Api(b.baseUrl, b.alice);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await viaA.createIntent(intent)).status);
      statuses.push((await viaB.createIntent(intent)).status);
    }
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.at(-1)).toBe(429);
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
