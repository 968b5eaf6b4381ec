import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import {
  dbTargets,
  eventually,
  type KvEnvTarget,
  kvEnvTargets,
  type Running,
  startImgup,
} from "../support/harness.ts";
import { garbage, photo } from "../support/image-builders.ts";
import { TestClock } from "../support/test-clock.ts";

type Labels = Record<string, string>;

/** Prometheus text exposition -> value by `name{sorted labels}`. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Labels = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    samples.set(sampleKey(m[1] as string, labels), Number(m[3]));
  }
  return samples;
}

function sampleKey(name: string, labels: Labels): string {
  const inner = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(",");
  return `${name}{${inner}}`;
}

const RATE_BURST = 5;
// Starting an instance and processing images on a loaded 2-core machine can take minutes; only a
// hang should fail these.
const SLOW = 300_000;

// Embedded everything; and PostgreSQL with Redis (the rate limit's store) when they are configured.
const redis = kvEnvTargets().find((t) => t.name === "redis");
const OPS_TOKEN = "ops-token-for-the-metrics-test-01";
const targets = dbTargets().map((t) => ({ ...t, kv: t.name === "postgres" ? redis : undefined }));

describe.each(targets)("/metrics after a small workload on $name", (target) => {
  let run: Running;
  let alice: Api;
  let bob: Api;
  let kv: KvEnvTarget | undefined;
  const scrape = async () => {
    // With DATABASE_URL the API port's /metrics needs the ops token (issue 13): sent on both targets.
    const res = await fetch(`${run.baseUrl}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    return parseExposition(await res.text());
  };

  beforeAll(async () => {
    kv = target.kv?.make();
    run = await startImgup(
      target.make(),
      {
        ...kv?.env,
        IMGUP_OPS_TOKEN: OPS_TOKEN,
        IMGUP_RATE_LIMIT_PER_SEC: "1",
        IMGUP_RATE_LIMIT_BURST: String(RATE_BURST),
        IMGUP_UPLOAD_URL_TTL: "3",
        IMGUP_PENDING_GRACE_MS: "0",
      },
      // The rate-limit buckets stand still (no refill) unless the test moves this clock.
      { kvClock: new TestClock().now, kvCommandTimeoutMs: SLOW },
    );
    // The scheduler's first reconcile comes at a random moment within a minute of start: landing
    // between the abandoned intent's expiry and the test's own run, it expired the intent first and
    // the test's run found nothing (expired 0). The test runs the same reconciler itself.
    await run.imgup.maintenance.scheduler.stop();
    // A Redis client not connected yet waits 1 s at most, then the limiter fails open: wait for it.
    await eventually(() => run.imgup.kv.ping().then(() => true));
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
  }, SLOW);
  afterAll(async () => {
    await run?.stop();
    await kv?.flush();
  }, SLOW);

  it(
    "moves every counter by exactly what the workload did",
    async () => {
      const before = await scrape();
      const jpeg = await photo(64, 48).jpeg().toBuffer();

      // An intent nobody uploads to: the reconciler expires it once its URL lapsed.
      const abandoned = await alice.createIntent({
        filename: "gone.jpg",
        contentType: "image/jpeg",
        size: 10,
      });
      expect(abandoned.status).toBe(201);

      // Two uploads that become ready, one that is rejected.
      const ready: string[] = [];
      for (const name of ["a.jpg", "b.jpg"]) {
        const { intent, put } = await alice.uploadBytes(jpeg, { filename: name, contentType: "image/jpeg" });
        expect(put.status).toBe(200);
        ready.push(intent.image.id);
      }
      const bad = await alice.uploadBytes(garbage(500, 7), { filename: "c.jpg", contentType: "image/jpeg" });
      for (const id of ready) expect((await alice.settled(id)).status).toBe("ready");
      expect(await alice.settled(bad.intent.image.id)).toMatchObject({
        status: "rejected",
        rejectReason: "not_an_image",
      });

      // A preset that is not made eagerly: miss (made now), then hit (served from the storage).
      const small = `/i/${ready[0]}/small`;
      const accept = { accept: "image/webp" };
      expect((await alice.request("GET", small, { headers: accept })).status).toBe(200);
      expect((await alice.request("GET", small, { headers: accept })).status).toBe(200);

      // 404s: an image nobody has, a path no route has.
      expect((await alice.getImage("01890a5d-ac96-774b-bcce-b302099a8057")).status).toBe(404);
      expect((await alice.request("GET", "/v1/nothing-here")).status).toBe(404);

      expect((await alice.request("DELETE", `/v1/images/${ready[1]}`)).status).toBe(204);

      // The reconciler's cut-off is its process's clock minus the grace (0 here), compared with the
      // stored upload_expires_at: wait for exactly that condition, not for a guessed time.
      const stored = await run.imgup.database.db
        .selectFrom("images")
        .select("upload_expires_at")
        .where("id", "=", abandoned.body.image.id)
        .executeTakeFirstOrThrow();
      const expiresAt = new Date(stored.upload_expires_at).getTime();
      await eventually(async () => Date.now() - run.config.maintenance.pendingGraceMs > expiresAt, 60_000);
      const report = await run.imgup.maintenance.reconciler.run({
        dryRun: false,
        signal: new AbortController().signal,
      });
      expect(report.expired).toBe(1);

      const lapsed = await run.imgup.database.db
        .selectFrom("images")
        .select("status")
        .where("id", "=", abandoned.body.image.id)
        .executeTakeFirstOrThrow();
      expect(lapsed.status).toBe("expired");

      // Bob's bucket holds RATE_BURST intents and, on the test's standing clock, never refills.
      const burst = await Promise.all(
        Array.from({ length: RATE_BURST + 20 }, (_, i) =>
          bob.createIntent({ filename: `r${i}.jpg`, contentType: "image/jpeg", size: 10 }),
        ),
      );
      const refused = burst.filter((r) => r.status === 429).length;
      const accepted = burst.filter((r) => r.status === 201).length;
      expect(accepted).toBe(RATE_BURST);
      expect(refused).toBe(20);

      const after = await scrape();
      const delta = (name: string, labels: Labels = {}) =>
        (after.get(sampleKey(name, labels)) ?? 0) - (before.get(sampleKey(name, labels)) ?? 0);
      const http = (method: string, route: string, status: number) =>
        delta("imgup_http_request_duration_seconds_count", { method, route, status_code: String(status) });

      expect(delta("imgup_intents_created_total", { method: "put" })).toBe(4 + accepted);
      expect(delta("imgup_images_finalized_total", { status: "ready", reason: "" })).toBe(2);
      expect(delta("imgup_images_finalized_total", { status: "rejected", reason: "not_an_image" })).toBe(1);
      expect(delta("imgup_images_finalized_total", { status: "deleted", reason: "owner_request" })).toBe(1);
      expect(delta("imgup_images_finalized_total", { status: "expired", reason: "upload_lapsed" })).toBe(1);
      expect(delta("imgup_processing_duration_seconds_count", { outcome: "ready" })).toBe(2);
      expect(delta("imgup_processing_duration_seconds_count", { outcome: "rejected" })).toBe(1);
      expect(delta("imgup_variant_requests_total", { result: "miss" })).toBe(1);
      expect(delta("imgup_variant_requests_total", { result: "hit" })).toBe(1);
      expect(delta("imgup_rate_limit_rejections_total", { limit: "intents" })).toBe(refused);
      expect(delta("imgup_rate_limit_fail_open_total", { limit: "intents" })).toBe(0);

      // Latency by route pattern and status: never the raw URL.
      expect(http("POST", "/v1/uploads", 201)).toBe(4 + accepted);
      expect(http("POST", "/v1/uploads", 429)).toBe(refused);
      expect(http("GET", "/i/:imageId/:preset", 200)).toBe(2);
      expect(http("GET", "/v1/images/:id", 404)).toBe(1);
      expect(http("GET", "unmatched", 404)).toBe(1);
      expect(http("DELETE", "/v1/images/:id", 204)).toBe(1);
      expect([...after.keys()].some((k) => k.includes(ready[0] as string))).toBe(false);
      expect(after.get(sampleKey("imgup_db_breaker_state", {}))).toBe(0);
    },
    SLOW,
  );

  it(
    "reads the job queue's depth and the age of its oldest job at scrape time",
    async () => {
      // No worker from here on: what is queued stays queued.
      await run.imgup.runner?.stop(10_000);
      const jpeg = await photo(32, 32).jpeg().toBuffer();
      const { put } = await alice.uploadBytes(jpeg, { filename: "q.jpg", contentType: "image/jpeg" });
      expect(put.status).toBe(200);
      const first = await eventually(async () => {
        const m = await scrape();
        return m.get(sampleKey("imgup_job_queue_depth", { state: "queued" })) === 1 && m;
      });
      expect(first.get(sampleKey("imgup_job_queue_depth", { state: "running" }))).toBe(0);
      const age = first.get(sampleKey("imgup_job_queue_oldest_age_seconds", {})) ?? -1;
      expect(age).toBeGreaterThanOrEqual(0);
      // Read at scrape time, so it grows while the job waits: wait for that rather than a set time.
      await eventually(async () => {
        const later = (await scrape()).get(sampleKey("imgup_job_queue_oldest_age_seconds", {})) ?? -1;
        return later > age;
      });
    },
    SLOW,
  );
});

describe("the exposition parser the test relies on", () => {
  it("reads labels in any order, escaped quotes and unlabelled samples", () => {
    const parsed = parseExposition('m_total{b="2",a="x \\"y\\""} 3\nm2 1.5\n# HELP x\n');
    expect(parsed.get(sampleKey("m_total", { a: 'x \\"y\\"', b: "2" }))).toBe(3);
    expect(parsed.get(sampleKey("m2", {}))).toBe(1.5);
  });
});
