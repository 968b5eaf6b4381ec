import { afterEach, describe, expect, it } from "vitest";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, freePort, type Running, startImgup } from "../support/harness.ts";

const OPS_TOKEN = "ops-token-for-the-admin-test-0123";
type Ready = { status: string; checks: Record<string, string>; failed: string[] };
const pglite = { name: "pglite" as const, env: {}, cleanup: async () => {} };

/** IMGUP_ADMIN_PORT in each role, in-process (embedded database and storage). */
describe("the admin endpoint (/healthz, /readyz, /metrics on IMGUP_ADMIN_PORT)", () => {
  const runs: Running[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((r) => r.stop()));
  });
  const start = async (env: Record<string, string>) => {
    const run = await startImgup(pglite, env);
    runs.push(run);
    return run;
  };

  it("api role: the probes on the admin port, with the ops token as on the API port, and nothing else", async () => {
    const port = await freePort();
    const run = await start({
      IMGUP_ROLE: "api",
      IMGUP_ADMIN_PORT: String(port),
      IMGUP_OPS_TOKEN: OPS_TOKEN,
    });
    expect(run.imgup.adminUrl).toBe(`http://127.0.0.1:${port}`);
    const anon = new Api(`http://127.0.0.1:${port}`);
    const ops = anon.as(OPS_TOKEN);
    expect((await anon.request("GET", "/healthz")).body).toEqual({ status: "ok" });
    const denied = await anon.request("GET", "/metrics");
    expect(denied.status).toBe(401);
    expect(denied.body).toMatchObject({ code: "unauthenticated" });
    const scraped = await ops.request<string>("GET", "/metrics");
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain("imgup_job_queue_depth");
    const ready = await ops.request<Ready>("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ database: "ok", kv: "ok", storage: "ok" });
    // The admin port serves no API; the API port still answers the probes as before.
    expect((await ops.request("GET", "/v1/images")).status).toBe(404);
    expect((await anon.request("GET", "/")).status).toBe(404);
    expect((await new Api(run.baseUrl, OPS_TOKEN).request("GET", "/metrics")).status).toBe(200);
  });

  it("worker role: its readiness covers the run loop and the queue's database; its /metrics the processing metrics", async () => {
    const port = await freePort();
    const run = await start({ IMGUP_ROLE: "worker", IMGUP_ADMIN_PORT: String(port) });
    expect(run.imgup.http).toBeNull();
    const admin = new Api(`http://127.0.0.1:${port}`);
    expect((await admin.request("GET", "/healthz")).status).toBe(200);
    const ready = await admin.request<Ready>("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      status: "ok",
      checks: { database: "ok", kv: "ok", storage: "ok", runLoop: "ok" },
      failed: [],
    });
    const metrics = await admin.request<string>("GET", "/metrics");
    for (const name of [
      "imgup_images_finalized_total",
      "imgup_processing_duration_seconds",
      "imgup_job_queue_depth",
      "imgup_job_queue_oldest_age_seconds",
      "imgup_images_pending_lapsed_seconds",
    ])
      expect(metrics.body).toContain(`# TYPE ${name} `);
  });

  it("embedded mode without IMGUP_ADMIN_PORT: one port for everything, no admin server", async () => {
    const run = await start({});
    expect(run.imgup.adminUrl).toBeNull();
    const api = new Api(run.baseUrl);
    expect((await api.request("GET", "/healthz")).status).toBe(200);
    expect((await api.request("GET", "/metrics")).status).toBe(200);
    const ready = await api.request<Ready>("GET", "/readyz");
    expect(ready.body.checks).toMatchObject({ workers: "ok", storageEvents: "ok" });
  });

  it("degraded, still 200, while an issued upload's storage event does not come; ok once it does", async () => {
    const run = await start({ IMGUP_READY_EVENTS_SECONDS: "1" });
    const alice = new Api(run.baseUrl, run.alice);
    const bytes = await makeImage("jpeg", 32, 24);
    const intent = await alice.createIntent({
      filename: "e.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    expect(intent.status).toBe(201);
    const degraded = await eventually(async () => {
      const r = await alice.request<Ready>("GET", "/readyz");
      return r.body.status === "degraded" ? r : undefined;
    });
    expect(degraded.status).toBe(200);
    expect(degraded.body.failed).toEqual([]);
    expect(degraded.body.checks.storageEvents).toMatch(
      /^degraded: no storage event seen while uploads were issued \(the first \d+ s ago\)$/,
    );
    expect((await putTo(intent.body.upload, bytes)).status).toBe(200);
    await eventually(async () => {
      const r = await alice.request<Ready>("GET", "/readyz");
      return r.body.status === "ok" && r.body.checks.storageEvents === "ok";
    });
  });
});
