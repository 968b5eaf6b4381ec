import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import {
  type DbTarget,
  dbTargets,
  eventually,
  freePort,
  type KvEnvTarget,
  kvEnvTargets,
} from "../support/harness.ts";
import { type RoleProcess, startRole } from "../support/role-process.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";
import { startVarnish, type Varnish, varnishdOrSkip } from "../support/varnish.ts";

const OPS_TOKEN = "ops-token-for-the-multi-process-test-0";
const HERD = 200;

const db = dbTargets().find((t) => t.name === "postgres");
const redis = kvEnvTargets().find((t) => t.name === "redis");
const connection = s3TestConnection();
const varnishd = varnishdOrSkip();

/** Sum of a counter's samples in a Prometheus text exposition (0 when absent). */
function counterSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/**
 * The production shape twice over: two API processes and two workers on one PostgreSQL schema, one
 * Redis prefix and one RGW bucket, with Varnish (deploy/varnish/imgup.vcl, round robin over both
 * APIs) in front and the workers purging it.
 */
describe.skipIf(!db || !redis || !connection || !varnishd)(
  "two API processes and two workers on shared backends",
  () => {
    let database: DbTarget;
    let kv: KvEnvTarget;
    let bucket: S3TestTarget;
    const procs: RoleProcess[] = [];
    let apis: Api[] = [];
    let admins: Api[] = [];
    let varnish: Varnish;

    const transformsOnApis = async () => {
      let total = 0;
      for (const admin of admins) {
        const r = await admin.request<string>("GET", "/metrics");
        expect(r.status).toBe(200);
        total += counterSum(r.body, "imgup_transforms_total");
      }
      return total;
    };
    const upload = async (api: Api, name: string) => {
      const { intent, put } = await api.uploadBytes(await makeImage("jpeg", 320, 240), {
        filename: name,
        contentType: "image/jpeg",
      });
      expect(put.status).toBe(200);
      // No bucket notification here: the client's completion hint queues the job.
      expect((await api.request("POST", `/v1/uploads/${intent.image.id}/complete`)).status).toBe(202);
      const image = await api.settled(intent.image.id);
      expect(image.status).toBe("ready");
      return image;
    };
    const signedUrl = async (api: Api, id: string, spec: string) => {
      const r = await api.request<{ url: string }>("POST", `/v1/images/${id}/urls`, { json: { spec } });
      expect(r.status).toBe(200);
      return new URL(r.body.url);
    };
    /** The same path on another API process. */
    const on = (url: URL, i: number) => {
      const base = new URL(apis[i]?.baseUrl ?? "");
      return `${base.origin}${url.pathname}${url.search}`;
    };

    beforeAll(async () => {
      const target = await s3TestTarget();
      if (!db || !redis || !connection || !target) throw new Error("no backends");
      bucket = target;
      const varnishPort = await freePort();
      database = db.make();
      kv = redis.make();
      const env = {
        ...database.env,
        ...kv.env,
        ...s3Env(bucket, connection),
        IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
        IMGUP_OPS_TOKEN: OPS_TOKEN,
        IMGUP_JOB_POLL_MS: "100",
        // The herd comes from one address: the per-client budget would refuse most of it.
        IMGUP_TRANSFORM_MISSES_PER_SEC: "100000",
        IMGUP_TRANSFORM_MISSES_BURST: "100000",
        IMGUP_TRANSFORM_OWNER_MISSES_PER_SEC: "100000",
        IMGUP_TRANSFORM_OWNER_MISSES_BURST: "100000",
        IMGUP_RATE_LIMIT_PER_SEC: "10000",
        IMGUP_RATE_LIMIT_BURST: "10000",
        LOG_LEVEL: "warn",
        IMGUP_CDN_PURGE: "varnish",
        IMGUP_CDN_PURGE_VARNISH_URLS: `http://127.0.0.1:${varnishPort}/`,
        IMGUP_CDN_PURGE_REPEAT_MS: "0",
      };
      // The first API migrates the fresh schema and writes the dev key; the others find both.
      const first = await startRole("api", { ...env, IMGUP_AUTO_MIGRATE: "true", IMGUP_DEV_KEY: "true" });
      procs.push(first);
      const key = (await readFile(path.join(first.dataDir, "dev-api-key"), "utf8")).trim();
      procs.push(
        ...(await Promise.all([startRole("api", env), startRole("worker", env), startRole("worker", env)])),
      );
      const apiProcs = procs.filter((p) => p.role === "api");
      apis = apiProcs.map((p) => new Api(p.baseUrl ?? "", key));
      admins = apiProcs.map((p) => new Api(p.adminUrl, OPS_TOKEN));
      varnish = await startVarnish(
        varnishd ?? "",
        varnishPort,
        apiProcs.map((p) => Number(new URL(p.baseUrl ?? "").port)),
      );
    }, 240_000);

    afterAll(async () => {
      await varnish?.stop();
      await Promise.all(procs.map((p) => p.stop()));
      await database?.cleanup();
      await kv?.flush();
      await bucket?.cleanup();
    });

    it(`a herd of ${HERD} for one cold variant over both APIs, with uploads going on: one transform`, async () => {
      const [a, b] = apis;
      if (!a || !b) throw new Error("two APIs expected");
      const image = await upload(a, "herd.jpg");
      // Made by one instance, honoured by the other: both hold the same signing secret.
      const url = await signedUrl(a, image.id, "w_123,h_77,fit_cover,f_webp");
      const before = await transformsOnApis();
      const uploads = Promise.all([0, 1, 2, 3].map((i) => upload(apis[i % 2] as Api, `mixed-${i}.jpg`)));
      const bodies = await Promise.all(
        Array.from({ length: HERD }, async (_, i) => {
          const res = await fetch(on(url, i % 2));
          expect(res.status).toBe(200);
          return Buffer.from(await res.arrayBuffer());
        }),
      );
      await uploads;
      expect(new Set(bodies.map((body) => body.toString("base64"))).size).toBe(1);
      expect((await transformsOnApis()) - before).toBe(1);
    });

    it("a delete or a switch to private through one API: 404 on both at once, and through the cache once purged", async () => {
      const [a, b] = apis;
      if (!a || !b) throw new Error("two APIs expected");
      const gone = await upload(b, "delete-me.jpg");
      const hidden = await upload(a, "hide-me.jpg");
      const urls = {
        gone: [await signedUrl(a, gone.id, "w_64,f_jpeg"), new URL(`${a.baseUrl}/i/${gone.id}/thumb`)],
        hidden: [await signedUrl(b, hidden.id, "w_64,f_jpeg"), new URL(`${b.baseUrl}/i/${hidden.id}/thumb`)],
      };
      const cached = (u: URL) => `${varnish.url}${u.pathname}${u.search}`;
      // Warm every instance on every URL first: whatever they keep in memory must not outlive the
      // change. And the cache: public URLs become hits there.
      for (const u of [...urls.gone, ...urls.hidden]) {
        for (const i of [0, 1]) expect((await fetch(on(u, i))).status).toBe(200);
        expect((await fetch(cached(u))).status).toBe(200);
        const again = await fetch(cached(u));
        expect(again.status).toBe(200);
        expect(again.headers.get("x-cache")).toBe("HIT");
      }

      expect((await a.request("DELETE", `/v1/images/${gone.id}`)).status).toBe(204);
      expect(
        (await b.request("PATCH", `/v1/images/${hidden.id}`, { json: { visibility: "private" } })).status,
      ).toBe(200);
      for (const u of [...urls.gone, ...urls.hidden])
        for (const i of [0, 1]) expect((await fetch(on(u, i))).status, `${u.pathname} on api ${i}`).toBe(404);
      // The cache learns it from the workers' queued purge (a BAN by the image's surrogate key).
      for (const u of [...urls.gone, ...urls.hidden])
        await eventually(async () => (await fetch(cached(u))).status === 404);
    });
  },
);
