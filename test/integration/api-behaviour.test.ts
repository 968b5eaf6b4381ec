import { SignJWT } from "jose";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originalKey } from "../../src/domain/keys.ts";
import { JobRunner } from "../../src/jobs/job-runner.ts";
import { PROCESS_IMAGE } from "../../src/services/storage-events.ts";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, finishedJob, type Running, startImgup } from "../support/harness.ts";

const JWT_SECRET = "a-test-jwt-secret-that-is-long-enough-0123456789";

describe.each(dbTargets())("API behaviour on $name", (target) => {
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    run = await startImgup(target.make(), { IMGUP_JWT_SECRET: JWT_SECRET });
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  it("requires a bearer token: 401 problem+json without or with a bad one", async () => {
    const anon = new Api(run.baseUrl);
    const none = await anon.request("GET", "/v1/images");
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toContain("application/problem+json");
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect(none.body).toMatchObject({ code: "unauthenticated", status: 401 });
    const bad = await anon.as("imgup_not-a-real-key").request("GET", "/v1/images");
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ code: "invalid_token" });
  });

  it("accepts an HS256 JWT whose sub is the owner, and refuses an expired or foreign-signed one", async () => {
    const key = new TextEncoder().encode(JWT_SECRET);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(key);
    const viaJwt = await alice.as(token).request<{ items: unknown[] }>("GET", "/v1/images");
    expect(viaJwt.status).toBe(200);
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    expect((await alice.as(expired).request("GET", "/v1/images")).status).toBe(401);
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("x".repeat(48)));
    expect((await alice.as(foreign).request("GET", "/v1/images")).status).toBe(401);
  });

  it("validates intents: unknown fields 400, unaccepted type 415, oversize JSON 413, bad JSON 400", async () => {
    const unknown = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: 10,
      owner: "bob",
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: "validation_failed" });
    expect(JSON.stringify(unknown.body)).toContain("owner");
    const svg = await alice.createIntent({ filename: "a.svg", contentType: "image/svg+xml", size: 10 });
    expect(svg.status).toBe(415);
    expect(svg.body).toMatchObject({ code: "unsupported_media_type" });
    const huge = await alice.createIntent({
      filename: "x".repeat(100_000),
      contentType: "image/jpeg",
      size: 10,
    });
    expect(huge.status).toBe(413);
    const broken = await alice.request("POST", "/v1/uploads", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(broken.status).toBe(400);
    expect(broken.headers.get("content-type")).toContain("application/problem+json");
    const missing = await alice.createIntent({ filename: "a.jpg", size: 10 });
    expect(missing.status).toBe(400);
    expect((await alice.request("GET", "/v1/nothing-here")).status).toBe(404);
  });

  it("lists the owner's images newest first with a keyset cursor", async () => {
    const owner = (await run.imgup.auth.createKey({ ownerId: "lister" })).key;
    const api = alice.as(owner);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await api.createIntent({ filename: `${i}.jpg`, contentType: "image/jpeg", size: 10 });
      ids.push(r.body.image.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
      const page = await api.request<{ items: { id: string }[]; nextCursor: string | null }>(
        "GET",
        `/v1/images${q}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((i) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await api.request("GET", "/v1/images?cursor=bm9wZQ")).status).toBe(400);
    expect((await api.request("GET", "/v1/images?limit=1000")).status).toBe(400);
  });

  it("deletes an image: 404 at once, objects removed by a job", async () => {
    const bytes = await makeImage("jpeg");
    const { intent } = await alice.uploadBytes(bytes, { filename: "gone.jpg", contentType: "image/jpeg" });
    const image = await alice.settled(intent.image.id);
    expect((await fetch(image.urls?.original ?? "")).status).toBe(200);
    expect((await alice.request("DELETE", `/v1/images/${image.id}`)).status).toBe(204);
    expect((await alice.getImage(image.id)).status).toBe(404);
    expect((await fetch(image.urls?.original ?? "")).status).toBe(404);
    await eventually(async () => (await run.imgup.store.head(originalKey(image.id))) === null);
    expect((await alice.request("DELETE", `/v1/images/${image.id}`)).status).toBe(404);
  });

  it("switches visibility with PATCH", async () => {
    const bytes = await makeImage("png");
    const { intent } = await alice.uploadBytes(bytes, { filename: "p.png", contentType: "image/png" });
    await alice.settled(intent.image.id);
    const patched = await alice.request<{ visibility: string }>("PATCH", `/v1/images/${intent.image.id}`, {
      json: { visibility: "private" },
    });
    expect(patched.body.visibility).toBe("private");
    expect((await fetch(`${run.baseUrl}/i/${intent.image.id}/original`)).status).toBe(404);
  });

  it("answers health and readiness", async () => {
    expect((await alice.request("GET", "/healthz")).body).toEqual({ status: "ok" });
    const ready = await alice.request("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ checks: { database: "ok", storage: "ok" } });
  });
});

describe.each(dbTargets())("expiry and crashed workers on $name", (target) => {
  it("refuses an upload URL after it expired", async () => {
    const run = await startImgup(target.make(), { IMGUP_UPLOAD_URL_TTL: "1" });
    try {
      const api = new Api(run.baseUrl, run.alice);
      const bytes = await makeImage("jpeg");
      const created = await api.createIntent({
        filename: "late.jpg",
        contentType: "image/jpeg",
        size: bytes.length,
      });
      await new Promise((r) => setTimeout(r, 2_100));
      const put = await putTo(created.body.upload, bytes);
      expect(put.status).toBe(403);
      expect(put.body).toContain("url_expired");
    } finally {
      await run.stop();
    }
  });

  it("picks up the job of a worker that died mid-job once its lease lapses", async () => {
    // An api-only process: no worker of its own, so the test plays the workers.
    const run = await startImgup(target.make(), { IMGUP_ROLE: "api" });
    try {
      const api = new Api(run.baseUrl, run.alice);
      const bytes = await makeImage("jpeg");
      const { intent } = await api.uploadBytes(bytes, { filename: "c.jpg", contentType: "image/jpeg" });
      // Worker A takes the job, starts processing, and dies: it never completes or extends the lease.
      // The lease cannot lapse on its own during the test however slow the machine; the test ends
      // it below (as time would) instead of waiting for a short one and racing it.
      const [taken] = await run.imgup.jobs.claim({ kinds: [PROCESS_IMAGE], limit: 1, leaseMs: 3_600_000 });
      expect(taken?.key).toBe(`process:${intent.image.id}`);
      expect(await run.imgup.jobs.claim({ kinds: [PROCESS_IMAGE], limit: 1, leaseMs: 3_600_000 })).toEqual(
        [],
      );
      await run.imgup.database.db
        .updateTable("jobs")
        .set({ locked_until: sql`now() - interval '1 second'` })
        .where("key", "=", `process:${intent.image.id}`)
        .execute();
      const workerB = new JobRunner({
        queue: run.imgup.jobs,
        concurrency: 1,
        leaseMs: 5_000,
        pollIntervalMs: 50,
        logger: pino({ level: "silent" }),
        handlers: {
          [PROCESS_IMAGE]: async (job) =>
            void (await run.imgup.processing.process(String(job.payload.imageId))),
        },
      });
      workerB.start();
      try {
        const image = await api.settled(intent.image.id);
        expect(image.status).toBe("ready");
        const job = await finishedJob(run.imgup.jobs, `process:${intent.image.id}`);
        expect(job).toMatchObject({ status: "done", attempts: 2 });
        // Worker A wakes up late: its lease is gone, so it cannot overwrite the outcome.
        expect(await run.imgup.jobs.complete(taken ?? ({} as never))).toBe(false);
      } finally {
        await workerB.stop(2_000);
      }
    } finally {
      await run.stop();
    }
  });
});
