import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transformUrl } from "../../src/services/transform-urls.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const SIGNING_KEY = "delivery-cache-test-signing-key-0123456789";
const SPEC = "w_64,h_48,fit_cover,f_webp";
const postgres = dbTargets().find((t) => t.name === "postgres");
const redis = kvEnvTargets().find((t) => t.name === "redis");

/**
 * Two imgup instances on one PostgreSQL schema, one Redis prefix and one storage directory, as a
 * deployment behind a load balancer: each keeps image records and hot variants in its own memory.
 */
describe.skipIf(!postgres || !redis)("cached hits across two instances", () => {
  let a: Running;
  let b: Running;
  let dataDir: string;
  let flushKv: () => Promise<void>;

  beforeAll(async () => {
    if (!postgres || !redis) return;
    const db = postgres.make();
    const kv = redis.make();
    flushKv = kv.flush;
    dataDir = await mkdtemp(path.join(tmpdir(), "imgup-delivery-cache-"));
    const env = {
      ...kv.env,
      IMGUP_DATA_DIR: dataDir,
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_URL_SIGNING_KEYS: SIGNING_KEY,
      IMGUP_TRANSFORM_MISSES_BURST: "10000",
      // Long enough that only a version change can explain a fresh read.
      IMGUP_RECORD_CACHE_MAX_AGE_MS: String(24 * 3600_000),
    };
    a = await startImgup(db, env);
    // The schema is the first instance's: the second must not drop it on stop.
    b = await startImgup({ ...db, cleanup: async () => {} }, env);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await flushKv?.();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function readyImage(run: Running, key: string): Promise<ImageJson> {
    const api = new Api(run.baseUrl, key);
    const bytes = await makeImage("jpeg", 320, 240);
    const { intent } = await api.uploadBytes(bytes, { filename: "p.jpg", contentType: "image/jpeg" });
    const image = await api.settled(intent.image.id);
    expect(image.status).toBe("ready");
    return image;
  }

  /** Both instances have served the preset and the signed variant (twice: the record is then trusted). */
  async function warm(image: ImageJson): Promise<string[]> {
    const paths = [
      `/i/${image.id}/thumb`,
      new URL(transformUrl(a.baseUrl, SIGNING_KEY, SPEC, image.id)).pathname,
    ];
    for (const run of [a, b, a, b]) {
      for (const p of paths) {
        const res = await fetch(`${run.baseUrl}${p}`);
        expect(res.status, `${run.baseUrl}${p}`).toBe(200);
        await res.arrayBuffer();
      }
    }
    return paths;
  }

  async function statuses(paths: string[]): Promise<number[]> {
    const out: number[] = [];
    for (const run of [b, a]) {
      for (const p of paths) {
        const res = await fetch(`${run.baseUrl}${p}`);
        await res.arrayBuffer();
        out.push(res.status);
      }
    }
    return out;
  }

  it("a delete through one instance is a 404 on the other at its very next request", async () => {
    const image = await readyImage(a, a.alice);
    const paths = await warm(image);
    const del = await new Api(a.baseUrl, a.alice).request("DELETE", `/v1/images/${image.id}`);
    expect(del.status).toBeLessThan(300);
    expect(await statuses(paths)).toEqual([404, 404, 404, 404]);
  });

  it("making an image private through one instance is a 404 for unsigned requests on both at once", async () => {
    const image = await readyImage(a, a.alice);
    const paths = await warm(image);
    const patch = await new Api(b.baseUrl, b.alice).request("PATCH", `/v1/images/${image.id}`, {
      json: { visibility: "private" },
    });
    expect(patch.status).toBe(200);
    expect(await statuses(paths)).toEqual([404, 404, 404, 404]);
    // Public again: served again, by both (the versions changed once more).
    const back = await new Api(a.baseUrl, a.alice).request("PATCH", `/v1/images/${image.id}`, {
      json: { visibility: "public" },
    });
    expect(back.status).toBe(200);
    expect(await statuses(paths)).toEqual([200, 200, 200, 200]);
  });

  it("an owner purge through one instance hides every image of the owner on the other at once", async () => {
    const ownerKey = (await a.imgup.auth.createKey({ ownerId: "dora" })).key;
    const admin = (await a.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key;
    const image = await readyImage(a, ownerKey);
    const paths = await warm(image);
    const purge = await new Api(a.baseUrl, admin).request("DELETE", "/v1/owners/dora/images");
    expect(purge.status).toBe(202);
    expect(await statuses(paths)).toEqual([404, 404, 404, 404]);
  });

  it("another owner's images stay cached and served through a purge", async () => {
    const image = await readyImage(b, b.bob);
    const paths = await warm(image);
    const admin = (await b.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key;
    expect((await new Api(b.baseUrl, admin).request("DELETE", "/v1/owners/nobody/images")).status).toBe(202);
    expect(await statuses(paths)).toEqual([200, 200, 200, 200]);
  });
});

describe("cached hits in embedded mode (memory KV, one process)", () => {
  let run: Running;
  const db = dbTargets()[0];

  beforeAll(async () => {
    if (!db) throw new Error("no database target");
    run = await startImgup(db.make(), { IMGUP_URL_SIGNING_KEYS: SIGNING_KEY });
  });
  afterAll(async () => run?.stop());

  it("serves hits from its caches and 404s right after a delete or a make-private", async () => {
    const api = new Api(run.baseUrl, run.alice);
    const upload = async () => {
      const { intent } = await api.uploadBytes(await makeImage("jpeg", 320, 240), {
        filename: "p.jpg",
        contentType: "image/jpeg",
      });
      return api.settled(intent.image.id);
    };
    const [gone, hidden] = [await upload(), await upload()];
    for (const image of [gone, hidden]) {
      for (let i = 0; i < 3; i++)
        expect((await fetch(`${run.baseUrl}/i/${image.id}/thumb`)).status).toBe(200);
    }
    expect((await api.request("DELETE", `/v1/images/${gone.id}`)).status).toBeLessThan(300);
    expect((await fetch(`${run.baseUrl}/i/${gone.id}/thumb`)).status).toBe(404);
    expect(
      (await api.request("PATCH", `/v1/images/${hidden.id}`, { json: { visibility: "private" } })).status,
    ).toBe(200);
    expect((await fetch(`${run.baseUrl}/i/${hidden.id}/thumb`)).status).toBe(404);
  });
});

const connection = s3TestConnection();
const s3Db = dbTargets().at(-1);

/** IMGUP_S3_DELIVERY_REDIRECT=presigned on Ceph RGW: the bucket serves the bytes of a hit. */
describe.skipIf(!connection || !s3Db)("cached hits redirected to the bucket (S3)", () => {
  let bucket: S3TestTarget;
  let run: Running;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !s3Db) throw new Error("no S3 target");
    bucket = target;
    run = await startImgup(s3Db.make(), {
      ...s3Env(target, connection),
      IMGUP_URL_SIGNING_KEYS: SIGNING_KEY,
      IMGUP_S3_DELIVERY_REDIRECT: "presigned",
      IMGUP_S3_DELIVERY_REDIRECT_TTL: "120",
      // Nothing held in memory: every hit is the storage's (or the redirect's).
      IMGUP_HOT_VARIANT_CACHE_MB: "0",
    });
  });
  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
  }, 120_000);

  it("answers a public hit seen once with a 302 to a presigned GET that returns the same bytes", async () => {
    const api = new Api(run.baseUrl, run.alice);
    const { intent, put } = await api.uploadBytes(await makeImage("jpeg", 320, 240), {
      filename: "p.jpg",
      contentType: "image/jpeg",
    });
    expect(put.status).toBe(200);
    // No bucket notification here: the client's completion hint finishes the upload.
    expect((await api.request("POST", `/v1/uploads/${intent.image.id}/complete`)).status).toBeLessThan(300);
    const image = await api.settled(intent.image.id);
    const url = `${run.baseUrl}/i/${image.id}/thumb`;
    const first = await fetch(url, { redirect: "manual" });
    expect(first.status).toBe(200);
    const bytes = Buffer.from(await first.arrayBuffer());
    const hit = await fetch(url, { redirect: "manual" });
    expect(hit.status).toBe(302);
    const location = hit.headers.get("location") ?? "";
    expect(location).toContain(bucket.options.bucket);
    expect(hit.headers.get("cache-control")).toMatch(/^public, max-age=(60|59)$/);
    const fromBucket = await fetch(location);
    expect(fromBucket.status).toBe(200);
    expect(Buffer.from(await fromBucket.arrayBuffer()).equals(bytes)).toBe(true);

    // Private: never a bucket URL; unsigned it is a 404 at once, as without the redirect.
    const patch = await api.request("PATCH", `/v1/images/${image.id}`, { json: { visibility: "private" } });
    expect(patch.status).toBe(200);
    expect((await fetch(url, { redirect: "manual" })).status).toBe(404);
  });
});
