/**
 * Two imgup instances on one PostgreSQL schema, one Redis prefix and one storage directory, as two
 * API processes behind a load balancer: a herd for one cold signed variant spread over both makes
 * one transform, and every client's own miss budget decides its answer, whoever else is waiting.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ImageWork, inProcessImageWork } from "../../src/imaging/image-work.ts";
import type { Metrics } from "../../src/metrics.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import {
  type DbTarget,
  dbTargets,
  eventually,
  type KvEnvTarget,
  kvEnvTargets,
  type Running,
  startImgup,
} from "../support/harness.ts";
import { TestClock } from "../support/test-clock.ts";

const db = dbTargets().find((t) => t.name === "postgres");
const redis = kvEnvTargets().find((t) => t.name === "redis");
const HERD = 200;
const missed = { result: "miss" };

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function total(metrics: Metrics[], pick: (m: Metrics) => Metrics["transforms"], labels = {}) {
  let sum = 0;
  for (const m of metrics) {
    for (const v of (await pick(m).get()).values) {
      const l = v.labels as Record<string, unknown>;
      if (Object.entries(labels).every(([k, want]) => l[k] === want)) sum += v.value;
    }
  }
  return sum;
}

describe.skipIf(!db || !redis)("variant single-flight across two API instances", () => {
  let database: DbTarget;
  let kv: KvEnvTarget;
  let dataDir: string;
  let a: Running;
  let b: Running;
  let alice: Api;
  let imageId: string;
  // Transforms pass straight through until a test holds them at this gate.
  let gate: { promise: Promise<void>; resolve: () => void } | null = null;
  let entered = deferred();
  let transforms = 0;
  const work: ImageWork = {
    ...inProcessImageWork,
    transform: async (...args) => {
      if (gate) {
        transforms++;
        entered.resolve();
        await gate.promise;
      }
      return inProcessImageWork.transform(...args);
    },
  };
  const metrics = () => [a.imgup.metrics, b.imgup.metrics];

  beforeAll(async () => {
    if (!db || !redis) throw new Error("no backends");
    database = db.make();
    kv = redis.make();
    dataDir = await mkdtemp(path.join(tmpdir(), "imgup-herd-"));
    // The bucket buckets on a clock that stands still: a budget spent stays spent however slowly
    // this machine runs the requests.
    const clock = new TestClock();
    const env = {
      ...kv.env,
      IMGUP_DATA_DIR: dataDir,
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      // One miss per client address (named by X-Forwarded-For from the loopback proxy), and an
      // owner budget the herd cannot exhaust.
      IMGUP_TRUST_PROXY: "127.0.0.1",
      IMGUP_TRANSFORM_MISSES_BURST: "1",
      IMGUP_TRANSFORM_OWNER_MISSES_BURST: "100000",
      IMGUP_TRANSFORM_TIMEOUT_MS: "120000",
    };
    const opts = { imageWork: work, kvClock: clock.now, kvCommandTimeoutMs: 30_000 };
    a = await startImgup(database, env, opts);
    // The schema is dropped once, by the first instance's stop.
    b = await startImgup({ ...database, cleanup: async () => {} }, env, opts);
    alice = new Api(a.baseUrl, a.alice);
    const { intent, put } = await alice.uploadBytes(await makeImage("jpeg", 640, 480), {
      filename: "herd.jpg",
      contentType: "image/jpeg",
    });
    expect(put.status).toBe(200);
    expect((await alice.settled(intent.image.id)).status).toBe("ready");
    imageId = intent.image.id;
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await kv?.flush();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function signed(spec: string): Promise<string> {
    const res = await alice.request<{ url: string }>("POST", `/v1/images/${imageId}/urls`, {
      json: { spec },
    });
    expect(res.status).toBe(200);
    return new URL(res.body.url).pathname;
  }

  const get = (base: string, pathname: string, ip: string) =>
    fetch(`${base}${pathname}`, { headers: { "x-forwarded-for": ip } });

  it("a herd of 200 over both instances makes exactly one transform; all get identical bytes", async () => {
    const pathname = await signed("w_321,h_123,fit_cover,f_webp");
    gate = deferred();
    entered = deferred();
    transforms = 0;
    const missesBefore = await Promise.all(
      metrics().map((m) => total([m], (x) => x.variantRequests, missed)),
    );
    const transformsBefore = await total(metrics(), (m) => m.transforms);
    const herd = Array.from({ length: HERD }, async (_, i) => {
      const res = await get(i % 2 ? b.baseUrl : a.baseUrl, pathname, `10.0.${i >> 8}.${i & 255}`);
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    });
    // Held until every request has missed, so all 200 are in flight at once on both instances.
    await entered.promise;
    await eventually(
      async () =>
        (await total(metrics(), (m) => m.variantRequests, missed)) -
          (missesBefore[0] ?? 0) -
          (missesBefore[1] ?? 0) ===
        HERD,
    );
    gate.resolve();
    const answers = await Promise.all(herd);
    gate = null;
    expect(answers.map((r) => r.status)).toEqual(Array(HERD).fill(200));
    expect(new Set(answers.map((r) => r.body.toString("base64"))).size).toBe(1);
    expect(transforms).toBe(1);
    expect((await total(metrics(), (m) => m.transforms)) - transformsBefore).toBe(1);
    // Each instance had its share of the herd; one claimed it, the other waited for its result.
    for (const [i, m] of metrics().entries()) {
      expect((await total([m], (x) => x.variantRequests, missed)) - (missesBefore[i] ?? 0)).toBe(HERD / 2);
    }
    expect(await total(metrics(), (m) => m.transformClaims, { outcome: "taken" })).toBe(1);
    expect(await total(metrics(), (m) => m.transformClaims, { outcome: "waited" })).toBe(1);
  });

  it("a client over its miss budget gets its own 429 while another's transform runs; a client within budget gets the variant", async () => {
    const pathname = await signed("w_222,h_111,fit_cover,f_jpeg");
    gate = deferred();
    entered = deferred();
    transforms = 0;
    const aMisses = await total([a.imgup.metrics], (m) => m.variantRequests, missed);
    const first = get(a.baseUrl, pathname, "10.1.0.1");
    await entered.promise;
    // Same client, its one miss spent: refused by its own budget, not carried by the running flight.
    const again = await get(b.baseUrl, pathname, "10.1.0.1");
    expect(again.status).toBe(429);
    expect(again.headers.get("retry-after")).toBeTruthy();
    const other = get(a.baseUrl, pathname, "10.1.0.2");
    // Released once the other client has missed too, so it joins the running transform.
    await eventually(
      async () => (await total([a.imgup.metrics], (m) => m.variantRequests, missed)) - aMisses === 2,
    );
    gate.resolve();
    const [r1, r2] = await Promise.all([first, other]);
    gate = null;
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(Buffer.from(await r1.arrayBuffer()).equals(Buffer.from(await r2.arrayBuffer()))).toBe(true);
    expect(transforms).toBe(1);
  });
});
