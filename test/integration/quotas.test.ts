import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const QUOTA = 200_000;

interface UsageJson {
  ownerId: string;
  bytes: { originals: number; variants: number; reserved: number; total: number };
  images: { stored: number; pending: number; total: number };
  limits: { bytes: number | null; images: number | null; source: string };
}

/**
 * Quotas through the HTTP API: usage as the owner sees it, refusals before any URL on every intent
 * route (presigned PUT, POST, multipart, proxy), no overshoot under parallel intents, dedup and
 * deletes, admin overrides.
 */
describe.each(dbTargets())("quotas on $name", ({ make }) => {
  let run: Running;
  let alice: Api;
  let admin: Api;
  let png: Buffer;
  let ready: ImageJson;

  beforeAll(async () => {
    run = await startImgup(make(), { IMGUP_QUOTA_BYTES: String(QUOTA) });
    alice = new Api(run.baseUrl, run.alice);
    admin = new Api(
      run.baseUrl,
      (await run.imgup.auth.createKey({ ownerId: "root", scopes: ["admin"] })).key,
    );
    png = await makeImage("png", 64, 48);
  }, 120_000);
  afterAll(async () => {
    await run?.stop();
  });

  const usageOf = async (api: Api) => {
    const r = await api.request<UsageJson>("GET", "/v1/usage");
    expect(r.status).toBe(200);
    return r.body;
  };
  const pendingCount = async (api: Api) =>
    (await api.request<{ items: unknown[] }>("GET", "/v1/images?status=pending")).body.items.length;
  const intent = (api: Api, size: number, method: string) =>
    api.createIntent({ filename: "a.png", contentType: "image/png", size, method });

  it("counts a ready image's original and eager variants, and nothing reserved", async () => {
    const { intent: created } = await alice.uploadBytes(png, { filename: "a.png", contentType: "image/png" });
    ready = await alice.settled(created.image.id);
    expect(ready.status).toBe("ready");
    const u = await usageOf(alice);
    expect(u.bytes.originals).toBe(png.length);
    expect(u.bytes.variants).toBeGreaterThan(0); // the eager thumb
    expect(u.bytes.reserved).toBe(0);
    expect(u.bytes.total).toBe(u.bytes.originals + u.bytes.variants);
    expect(u.images).toEqual({ stored: 1, pending: 0, total: 1 });
    expect(u.limits).toEqual({ bytes: QUOTA, images: null, source: "default" });
  });

  it("refuses every intent route that would exceed the bytes, before any URL or row exists", async () => {
    const used = (await usageOf(alice)).bytes.total;
    const room = QUOTA - used;
    for (const method of ["put", "post", "multipart"]) {
      const r = await intent(alice, room + 1, method);
      expect(r.status, method).toBe(413);
      expect(r.body).toMatchObject({
        code: "quota_exceeded",
        limit: "bytes",
        used,
        requested: room + 1,
        max: QUOTA,
      });
      expect(r.body).not.toHaveProperty("upload");
      expect(JSON.stringify(r.body)).not.toContain("/storage");
    }
    const proxied = await alice.request("POST", "/v1/images", {
      body: new Uint8Array(Buffer.alloc(room + 1, 1)),
      headers: { "content-type": "image/png" },
    });
    expect(proxied.status).toBe(413);
    expect(proxied.body).toMatchObject({ code: "quota_exceeded", limit: "bytes", requested: room + 1 });
    expect(await pendingCount(alice)).toBe(0);
    expect((await usageOf(alice)).bytes.total).toBe(used);
    // Exactly the room left fits.
    const fits = await intent(alice, room, "put");
    expect(fits.status).toBe(201);
    expect((await usageOf(alice)).bytes).toMatchObject({ reserved: room, total: QUOTA });
    expect((await alice.request("DELETE", `/v1/uploads/${fits.body.image.id}`)).status).toBeLessThan(300);
    expect((await usageOf(alice)).bytes.total).toBe(used);
  });

  it("answers a dedup even at a full quota, without counting it twice", async () => {
    const used = (await usageOf(alice)).bytes.total;
    const full = await intent(alice, QUOTA - used, "put");
    expect(full.status).toBe(201);
    const dup = await alice.createIntent({
      filename: "again.png",
      contentType: "image/png",
      size: png.length,
      sha256: sha256(png),
    });
    expect(dup.status).toBe(200);
    expect(dup.body).toMatchObject({ deduplicated: true, image: { id: ready.id } });
    expect((await usageOf(alice)).bytes.total).toBe(QUOTA);
    await alice.request("DELETE", `/v1/uploads/${full.body.image.id}`);
  });

  it("frees the quota when an image is deleted", async () => {
    const r = await alice.request("DELETE", `/v1/images/${ready.id}`);
    expect(r.status).toBeLessThan(300);
    const u = await usageOf(alice);
    expect(u.bytes).toEqual({ originals: 0, variants: 0, reserved: 0, total: 0 });
    expect(u.images.total).toBe(0);
    expect((await intent(alice, QUOTA, "put")).status).toBe(201);
  });

  it("lets exactly as many parallel intents in as fit", async () => {
    const bob = new Api(run.baseUrl, run.bob);
    const set = await admin.request<UsageJson>("PUT", "/v1/admin/owners/bob/quota", {
      json: { maxBytes: 10_000, maxImages: null },
    });
    expect(set.status).toBe(200);
    expect(set.body.limits).toEqual({ bytes: 10_000, images: null, source: "override" });
    const answers = await Promise.all(Array.from({ length: 8 }, () => intent(bob, 3000, "put")));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 201, 201, 413, 413, 413, 413, 413]);
    expect((await usageOf(bob)).bytes.reserved).toBe(9000);
    expect(await pendingCount(bob)).toBe(3);
  });

  it("refuses past the image count with 403, and the admin override can be read and removed", async () => {
    const carol = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "carol" })).key);
    await admin.request("PUT", "/v1/admin/owners/carol/quota", { json: { maxBytes: null, maxImages: 2 } });
    const first = await intent(carol, 10, "put");
    expect((await intent(carol, 10, "post")).status).toBe(201);
    const third = await intent(carol, 10, "multipart");
    expect(third.status).toBe(403);
    expect(third.body).toMatchObject({ code: "quota_exceeded", limit: "images", used: 2, max: 2 });
    // An aborted intent gives its place back.
    await carol.request("DELETE", `/v1/uploads/${first.body.image.id}`);
    expect((await intent(carol, 10, "put")).status).toBe(201);
    const got = await admin.request<UsageJson>("GET", "/v1/admin/owners/carol/quota");
    expect(got.body).toMatchObject({ ownerId: "carol", images: { pending: 2 }, limits: { images: 2 } });
    expect((await admin.request("DELETE", "/v1/admin/owners/carol/quota")).status).toBe(204);
    expect((await usageOf(carol)).limits).toEqual({ bytes: QUOTA, images: null, source: "default" });
    // Not for an owner's own key.
    expect((await carol.request("GET", "/v1/admin/owners/carol/quota")).status).toBe(403);
  });

  it("counts refusals by limit in the metrics", async () => {
    const text = await run.imgup.metrics.registry.metrics();
    expect(text).toMatch(/imgup_quota_refusals_total\{limit="bytes"\} [1-9]/);
    expect(text).toMatch(/imgup_quota_refusals_total\{limit="images"\} [1-9]/);
  });
});
