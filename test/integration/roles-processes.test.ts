import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { type DbTarget, dbTargets, eventually, type KvEnvTarget, kvEnvTargets } from "../support/harness.ts";
import { checkMetrics, promtoolPath } from "../support/promtool.ts";
import { type RoleProcess, startRole } from "../support/role-process.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const OPS_TOKEN = "ops-token-for-the-roles-test-0123";
// Small enough for the test, several heartbeat intervals wide so a loaded machine does not flap.
const HEARTBEAT_SECONDS = 5;
type Ready = { status: string; checks: Record<string, string>; failed: string[] };

const db = dbTargets().find((t) => t.name === "postgres");
const redis = kvEnvTargets().find((t) => t.name === "redis");
const connection = s3TestConnection();
const promtool = promtoolPath();

/**
 * The production shape: api, worker and scheduler as three `imgup serve --role …` processes on
 * PostgreSQL, Redis and Ceph RGW, each probed and scraped on its own IMGUP_ADMIN_PORT.
 */
describe.skipIf(!db || !redis || !connection || !promtool)(
  "api, worker and scheduler as separate processes",
  () => {
    let database: DbTarget;
    let kv: KvEnvTarget;
    let bucket: S3TestTarget;
    const roles: Partial<Record<"api" | "worker" | "scheduler", RoleProcess>> = {};
    const role = (name: "api" | "worker" | "scheduler") => {
      const r = roles[name];
      if (!r) throw new Error(`${name} not started`);
      return r;
    };
    const admin = (name: "api" | "worker" | "scheduler") => new Api(role(name).adminUrl, OPS_TOKEN);

    beforeAll(async () => {
      const target = await s3TestTarget();
      if (!db || !redis || !connection || !target) throw new Error("no backends");
      bucket = target;
      database = db.make();
      kv = redis.make();
      const env = {
        ...database.env,
        ...kv.env,
        ...s3Env(bucket, connection),
        IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
        IMGUP_OPS_TOKEN: OPS_TOKEN,
        IMGUP_JOB_POLL_MS: "100",
        IMGUP_HEARTBEAT_INTERVAL_MS: "250",
        IMGUP_READY_WORKER_SECONDS: String(HEARTBEAT_SECONDS),
      };
      // The API migrates the fresh schema (IMGUP_AUTO_MIGRATE); the others then find it current.
      roles.api = await startRole("api", { ...env, IMGUP_AUTO_MIGRATE: "true", IMGUP_DEV_KEY: "true" });
      [roles.worker, roles.scheduler] = await Promise.all([
        startRole("worker", env),
        startRole("scheduler", env),
      ]);
    });

    afterAll(async () => {
      await Promise.all(Object.values(roles).map((r) => r.stop()));
      await database?.cleanup();
      await kv?.flush();
      await bucket?.cleanup();
    });

    it("an upload through the api becomes ready through the worker; every admin endpoint answers and lints", async () => {
      const api = role("api");
      if (!api.baseUrl) throw new Error("the api has no URL");
      const key = (await readFile(path.join(api.dataDir, "dev-api-key"), "utf8")).trim();
      const alice = new Api(api.baseUrl, key);
      const { intent, put } = await alice.uploadBytes(await makeImage("jpeg", 80, 60), {
        filename: "roles.jpg",
        contentType: "image/jpeg",
      });
      expect(put.status).toBe(200);
      // No bucket notification here: the client's completion hint queues the job.
      expect((await alice.request("POST", `/v1/uploads/${intent.image.id}/complete`)).status).toBe(202);
      expect((await alice.settled(intent.image.id)).status).toBe("ready");

      const keyMetrics: Record<string, RegExp[]> = {
        api: [
          /^imgup_intents_created_total\{method="put"\} 1$/m,
          /^imgup_http_request_duration_seconds_count\{/m,
        ],
        worker: [
          /^imgup_images_finalized_total\{status="ready",reason=""\} [1-9]\d*$/m,
          /^imgup_processing_duration_seconds_count\{outcome="ready"\} [1-9]\d*$/m,
          /^imgup_job_queue_depth\{state="queued"\} \d+$/m,
        ],
        scheduler: [/^imgup_images_pending_lapsed_seconds \d/m, /^imgup_job_queue_oldest_age_seconds \d/m],
      };
      for (const name of ["api", "worker", "scheduler"] as const) {
        const ops = admin(name);
        expect((await ops.request("GET", "/healthz")).status, name).toBe(200);
        // The API is ok once the worker's first heartbeat is in Redis.
        const ready = await eventually(async () => {
          const r = await ops.request<Ready>("GET", "/readyz");
          return r.status === 200 && r.body.status === "ok" ? r : undefined;
        });
        expect(ready.body.failed).toEqual([]);
        if (name === "api") expect(ready.body.checks.workers).toBe("ok");
        if (name === "worker") expect(ready.body.checks.runLoop).toBe("ok");
        const scraped = await ops.request<string>("GET", "/metrics");
        expect(scraped.status, name).toBe(200);
        for (const pattern of keyMetrics[name] ?? []) expect(scraped.body, name).toMatch(pattern);
        const lint = await checkMetrics(scraped.body);
        expect(lint.output, name).toBe("");
        expect(lint.code, name).toBe(0);
      }
    });

    it("a SIGKILLed worker: the api's /readyz turns degraded (200) with 'no worker heartbeat for N s'", async () => {
      const worker = role("worker");
      worker.child.kill("SIGKILL");
      await worker.exited;
      const ops = admin("api");
      const degraded = await eventually(async () => {
        const r = await ops.request<Ready>("GET", "/readyz");
        return r.body.status === "degraded" ? r : undefined;
      });
      expect(degraded.status).toBe(200);
      expect(degraded.body.failed).toEqual([]);
      expect(degraded.body.checks.workers).toMatch(/^degraded: no worker heartbeat for \d+ s$/);
      const seconds = Number(/for (\d+) s/.exec(degraded.body.checks.workers ?? "")?.[1]);
      expect(seconds).toBeGreaterThanOrEqual(HEARTBEAT_SECONDS);
      // The scheduler does not depend on the worker: still ready.
      expect((await admin("scheduler").request<Ready>("GET", "/readyz")).body.status).toBe("ok");
    });
  },
);
