import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson, type IntentResponse } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { imageStatus, listAll } from "../support/maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const AVATAR = {
  maxBytes: 60_000,
  allowedTypes: ["jpeg", "png"],
  maxWidth: 100,
  maxHeight: 100,
  // Instead of the deployment's thumb.
  eagerPresets: ["small"],
  visibility: "private",
  claimRequired: true,
  claimTtlSeconds: 60,
};
const PROFILES_ENV = { IMGUP_PROFILES: JSON.stringify({ avatar: AVATAR }) };

type Problem = { code?: string; maxBytes?: number; field?: string };

/** Upload profiles through the real API, enforced at the intent, by the storage and by the worker. */
describe.each(dbTargets())("upload profiles ($name)", ({ make }) => {
  let run: Running;
  let alice: Api;
  let admin: Api;
  let small: Buffer;
  let wide: Buffer;

  beforeAll(async () => {
    run = await startImgup(make(), PROFILES_ENV);
    alice = new Api(run.baseUrl, run.alice);
    admin = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key);
    small = await makeImage("jpeg", 50, 40);
    wide = await makeImage("jpeg", 300, 80);
    expect(wide.length).toBeLessThan(AVATAR.maxBytes);
  });
  afterAll(async () => run?.stop());

  const intent = (body: Record<string, unknown>) =>
    alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", ...body }) as Promise<{
      status: number;
      body: IntentResponse & Problem;
    }>;

  async function upload(bytes: Buffer, body: Record<string, unknown>): Promise<ImageJson> {
    const { intent: created, put } = await alice.uploadBytes(bytes, {
      filename: "a.jpg",
      contentType: "image/jpeg",
      ...body,
    });
    expect(put.status).toBe(200);
    return alice.settled(created.image.id);
  }

  it("an unknown profile is 400 unknown_profile", async () => {
    const res = await intent({ size: small.length, profile: "nope" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "unknown_profile" });
    expect(res.body.upload).toBeUndefined();
  });

  it("layer 1: the intent refuses what the profile does not allow, before any URL", async () => {
    const big = await intent({ size: AVATAR.maxBytes + 1, profile: "avatar" });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ code: "payload_too_large", maxBytes: AVATAR.maxBytes });
    const webp = await intent({ size: 1000, contentType: "image/webp", profile: "avatar" });
    expect(webp.status).toBe(415);
    expect(webp.body.code).toBe("unsupported_media_type");
    const publicOne = await intent({ size: 1000, profile: "avatar", visibility: "public" });
    expect(publicOne.status).toBe(400);
    expect(publicOne.body).toMatchObject({ code: "validation_failed", field: "visibility" });
    for (const r of [big, webp, publicOne]) expect(r.body.upload).toBeUndefined();
    // Without the profile the deployment's limits apply: the same requests get URLs.
    expect((await intent({ size: AVATAR.maxBytes + 1 })).status).toBe(201);
    expect((await intent({ size: 1000, contentType: "image/webp" })).status).toBe(201);
  });

  it("layer 3: the worker rejects real dimensions over the profile; what fits gets its rules", async () => {
    const rejected = await upload(wide, { profile: "avatar" });
    expect(rejected).toMatchObject({
      status: "rejected",
      rejectReason: "dimensions_exceeded",
      profile: "avatar",
    });
    expect(rejected.rejectDetail).toContain("wider than 100 px");
    expect(await listAll(run, `${rejected.id}`)).toEqual([]);

    const ok = await upload(small, { profile: "avatar" });
    expect(ok).toMatchObject({
      status: "ready",
      visibility: "private",
      profile: "avatar",
      claimRequired: true,
      claimed: false,
    });
    const variants = (await listAll(run, "")).filter((k) => k.includes(`${ok.id}/v/`));
    expect(variants.length).toBe(1);
    expect(variants[0]).toContain("w_480");
    const ttl = Date.parse(String(ok.claimExpiresAt)) - Date.now();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(AVATAR.claimTtlSeconds * 1000);
    // The same bytes without the profile were never checked against it: no dedup across it.
    const again = await intent({ size: small.length, profile: "avatar", sha256: ok.sha256 });
    expect(again.status).toBe(201);
  });

  it("layer 3 holds the limits stored with the image, whatever reached the storage", async () => {
    // As if the intent had allowed it (a profile edited in between, a replayed buffered intent):
    // the worker judges by the row's own snapshot.
    for (const [patch, reason] of [
      [{ allowedTypes: ["image/png"] }, "unsupported_format"],
      [{ maxBytes: 100 }, "too_large"],
      [{ maxPixels: 100 }, "too_many_pixels"],
    ] as const) {
      const created = await intent({ size: small.length, profile: "avatar" });
      expect(created.status).toBe(201);
      const id = created.body.image.id;
      const db = run.imgup.database.db;
      const row = await db
        .selectFrom("images")
        .select("profile_limits")
        .where("id", "=", id)
        .executeTakeFirstOrThrow();
      const limits = { ...JSON.parse(String(row.profile_limits)), ...patch };
      await sql`update images set profile_limits = ${JSON.stringify(limits)} where id = ${id}`.execute(db);
      const res = await fetch(created.body.upload.url, {
        method: "PUT",
        headers: created.body.upload.headers,
        body: new Uint8Array(small),
      });
      expect(res.status).toBe(200);
      expect(await alice.settled(id)).toMatchObject({ status: "rejected", rejectReason: reason });
    }
  });

  it("the admin API manages stored profiles; config ones are read-only; images keep their snapshot", async () => {
    const listed = await admin.request<{ items: Array<{ name: string; source: string }> }>(
      "GET",
      "/v1/admin/profiles",
    );
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([
      expect.objectContaining({
        name: "avatar",
        source: "config",
        settings: expect.objectContaining({ allowedTypes: ["image/jpeg", "image/png"] }),
      }),
    ]);
    expect((await alice.request("GET", "/v1/admin/profiles")).status).toBe(403);
    expect((await alice.request("PUT", "/v1/admin/profiles/banner", { json: {} })).status).toBe(403);
    const readOnly = await admin.request<Problem>("PUT", "/v1/admin/profiles/avatar", {
      json: { maxBytes: 1 },
    });
    expect(readOnly.status).toBe(409);
    expect(readOnly.body.code).toBe("profile_read_only");
    expect((await admin.request<Problem>("DELETE", "/v1/admin/profiles/avatar")).body.code).toBe(
      "profile_read_only",
    );
    const badPreset = await admin.request<Problem>("PUT", "/v1/admin/profiles/banner", {
      json: { eagerPresets: ["nope"] },
    });
    expect(badPreset.status).toBe(400);
    expect(
      (await admin.request("PUT", "/v1/admin/profiles/banner", { json: { colour: "red" } })).status,
    ).toBe(400);
    expect((await admin.request("PUT", "/v1/admin/profiles/Bad%20Name", { json: {} })).status).toBe(400);

    const created = await admin.request("PUT", "/v1/admin/profiles/banner", {
      json: { maxWidth: 1000, allowedTypes: ["jpeg"] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "banner",
      source: "api",
      settings: { maxWidth: 1000, allowedTypes: ["image/jpeg"] },
    });
    const pending = await intent({ size: wide.length, profile: "banner" });
    expect(pending.status).toBe(201);
    // Tightened after that intent: the next intents get the new limits, the pending one its own.
    const replaced = await admin.request("PUT", "/v1/admin/profiles/banner", {
      json: { maxWidth: 10, allowedTypes: ["jpeg"] },
    });
    expect(replaced.status).toBe(200);
    expect((await admin.request("GET", "/v1/admin/profiles/banner")).body).toMatchObject({
      settings: { maxWidth: 10 },
    });
    const res = await fetch(pending.body.upload.url, {
      method: "PUT",
      headers: pending.body.upload.headers,
      body: new Uint8Array(wide),
    });
    expect(res.status).toBe(200);
    expect(await alice.settled(pending.body.image.id)).toMatchObject({ status: "ready", profile: "banner" });
    expect(await upload(wide, { profile: "banner" })).toMatchObject({
      status: "rejected",
      rejectReason: "dimensions_exceeded",
    });

    expect((await admin.request("DELETE", "/v1/admin/profiles/banner")).status).toBe(204);
    expect((await admin.request<Problem>("GET", "/v1/admin/profiles/banner")).body.code).toBe(
      "profile_not_found",
    );
    expect((await admin.request("DELETE", "/v1/admin/profiles/banner")).status).toBe(404);
    expect((await intent({ size: wide.length, profile: "banner" })).body.code).toBe("unknown_profile");
  });
});

const connection = s3TestConnection();
const storages: Array<{
  name: string;
  env: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>;
}> = [{ name: "local", env: async () => ({ env: {}, cleanup: async () => {} }) }];
if (connection) {
  storages.push({
    name: "s3",
    env: async () => {
      const bucket = (await s3TestTarget()) as S3TestTarget;
      return { env: s3Env(bucket, connection), cleanup: () => bucket.cleanup() };
    },
  });
}

/** Layer 2: the signed upload itself carries the profile's size and type; the storage refuses the rest. */
describe.each(storages)("upload profiles: the signed upload ($name storage)", ({ env }) => {
  let run: Running;
  let alice: Api;
  let cleanup: () => Promise<void>;
  let small: Buffer;

  beforeAll(async () => {
    const storage = await env();
    cleanup = storage.cleanup;
    const target = dbTargets()[0];
    if (!target) throw new Error("no database target");
    run = await startImgup(target.make(), { ...PROFILES_ENV, ...storage.env });
    alice = new Api(run.baseUrl, run.alice);
    small = await makeImage("jpeg", 50, 40);
  });
  afterAll(async () => {
    await run?.stop();
    await cleanup?.();
  });

  it("a PUT bigger than the profile allows, or of another type, is refused by the storage", async () => {
    const created = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: small.length,
      profile: "avatar",
    });
    expect(created.status).toBe(201);
    const { upload } = created.body;
    const over = Buffer.concat([small, Buffer.alloc(AVATAR.maxBytes)]);
    const put = (body: Buffer, overrides: Record<string, string> = {}) => {
      const headers = new Headers(upload.headers);
      for (const [name, value] of Object.entries(overrides)) headers.set(name, value);
      return fetch(upload.url, { method: "PUT", headers, body: new Uint8Array(body) });
    };
    const bigger = await put(over, { "content-length": String(over.length) });
    expect(bigger.status).toBeGreaterThanOrEqual(400);
    expect(bigger.status).toBeLessThan(500);
    // Another type the deployment accepts: only the signature stands in the way.
    const otherType = await put(small, { "content-type": "image/png" });
    expect(otherType.status, await otherType.text()).toBe(403);
    expect(await imageStatus(run, created.body.image.id)).toBe("pending");
    expect(await listAll(run, "")).toEqual([]);
  });

  it("a form POST bigger than the profile allows is refused by the storage", async () => {
    const created = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: small.length,
      profile: "avatar",
      method: "post",
    });
    expect(created.status).toBe(201);
    const { upload } = created.body;
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, value);
    form.append(
      "file",
      new Blob([new Uint8Array(Buffer.concat([small, Buffer.alloc(AVATAR.maxBytes)]))]),
      "a.jpg",
    );
    const res = await fetch(upload.url, { method: "POST", body: form });
    await res.arrayBuffer();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await imageStatus(run, created.body.image.id)).toBe("pending");
  });
});
