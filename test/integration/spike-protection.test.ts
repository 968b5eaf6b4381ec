import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, putTo, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import {
  dbTargets,
  eventually,
  type KvEnvTarget,
  kvEnvTargets,
  type Running,
  startImgup,
} from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

describe.each(kvEnvTargets())("idempotency keys and dedup with the $name KV", (kvTarget) => {
  let kv: KvEnvTarget;
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    kv = kvTarget.make();
    run = await startImgup(db.make(), { ...kv.env, IMGUP_RATE_LIMIT_BURST: "1000" });
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => {
    await run?.stop();
    await kv?.flush();
  });

  const body = (name: string) => ({ filename: name, contentType: "image/jpeg", size: 1234 });
  const countImages = async (api: Api) =>
    (await api.request<{ items: unknown[] }>("GET", "/v1/images?limit=100")).body.items.length;

  it("50 concurrent intents with one key make exactly one image; the rest are 409 or the identical replay", async () => {
    const owner = alice.as((await run.imgup.auth.createKey({ ownerId: `idem-${kvTarget.name}` })).key);
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        owner.createIntent(body("same.jpg"), { "Idempotency-Key": '"order-42"' }),
      ),
    );
    const created = results.filter((r) => r.status === 201 && r.headers.get("idempotent-replayed") === null);
    const replays = results.filter((r) => r.headers.get("idempotent-replayed") === "true");
    const busy = results.filter((r) => r.status === 409);
    expect(created).toHaveLength(1);
    expect(replays.length + busy.length).toBe(49);
    // A replay is re-rendered: the same image, its upload URLs signed afresh.
    for (const r of replays) {
      expect(r.body.image.id).toBe(created[0]?.body.image.id);
      expect(r.body.upload.method).toBe("put");
    }
    for (const r of busy) {
      expect(r.body.code).toBe("idempotency_request_in_progress");
      expect(r.headers.get("retry-after")).toBe("1");
    }
    expect(await countImages(owner)).toBe(1);
    const later = await owner.createIntent(body("same.jpg"), { "Idempotency-Key": "order-42" });
    expect(later.status).toBe(201);
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect(later.body.image.id).toBe(created[0]?.body.image.id);
  });

  it("re-renders a replay with fresh upload URLs once the first ones lapsed, and the image as it is now", async () => {
    const short = await startImgup(db.make(), { ...kv.env, IMGUP_UPLOAD_URL_TTL: "1" });
    try {
      const api = new Api(short.baseUrl, short.alice);
      const bytes = await makeImage("png");
      const intent = { filename: "late.png", contentType: "image/png", size: bytes.length };
      const first = await api.createIntent(intent, { "Idempotency-Key": "slow-client" });
      expect(first.status).toBe(201);
      const lapsedAt = Date.parse(first.body.upload.expiresAt);
      // Wait for the condition itself: the first URL has lapsed by the server's clock.
      await eventually(async () => Date.now() > lapsedAt + 1000, 30_000);
      expect((await putTo(first.body.upload, bytes)).status).toBe(403);
      const sentAt = Date.now();
      const replay = await api.createIntent(intent, { "Idempotency-Key": "slow-client" });
      expect(replay.status).toBe(201);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(replay.body.image.id).toBe(first.body.image.id);
      expect(Date.parse(replay.body.upload.expiresAt)).toBeGreaterThan(sentAt);
      expect(replay.body.upload.url).not.toBe(first.body.upload.url);
      // Once the image is no longer pending, a replay carries no upload at all.
      await api.request("DELETE", `/v1/uploads/${first.body.image.id}`);
      const gone = await api.createIntent(intent, { "Idempotency-Key": "slow-client" });
      expect(gone.status).toBe(404);
    } finally {
      await short.stop();
    }
  });

  it("refuses the same key with another body (422) and malformed keys (400)", async () => {
    const first = await alice.createIntent(body("a.jpg"), { "Idempotency-Key": "k-422" });
    expect(first.status).toBe(201);
    const other = await alice.createIntent(body("b.jpg"), { "Idempotency-Key": "k-422" });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("idempotency_key_reused");
    for (const bad of ["", '""', "x".repeat(256), "tab\there", "é"]) {
      const r = await alice.createIntent(body("c.jpg"), { "Idempotency-Key": bad });
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.code).toBe("invalid_idempotency_key");
    }
  });

  it("keeps nothing for a request that failed validation, so the fixed request goes through", async () => {
    const bad = await alice.createIntent({ ...body("v.jpg"), size: 0 }, { "Idempotency-Key": "k-fix" });
    expect(bad.status).toBe(400);
    const fixed = await alice.createIntent(body("v.jpg"), { "Idempotency-Key": "k-fix" });
    expect(fixed.status).toBe(201);
    expect(fixed.headers.get("idempotent-replayed")).toBeNull();
  });

  it("scopes keys to the owner", async () => {
    const a = await alice.createIntent(body("o.jpg"), { "Idempotency-Key": "shared-key" });
    const b = await alice.as(run.bob).createIntent(body("o.jpg"), { "Idempotency-Key": "shared-key" });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(b.body.image.id).not.toBe(a.body.image.id);
  });

  it.skipIf(kvTarget.name === "memory")(
    "still makes one image when the KV forgot the key (database backstop)",
    async () => {
      const owner = alice.as((await run.imgup.auth.createKey({ ownerId: "backstop" })).key);
      const first = await owner.createIntent(body("f.jpg"), { "Idempotency-Key": "flushed" });
      expect(first.status).toBe(201);
      await kv.flush();
      const retry = await owner.createIntent(body("f.jpg"), { "Idempotency-Key": "flushed" });
      expect(retry.status).toBe(201);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect(retry.body.image.id).toBe(first.body.image.id);
      expect(retry.body.upload.url).toBeTruthy();
      await kv.flush();
      const changed = await owner.createIntent(body("g.jpg"), { "Idempotency-Key": "flushed" });
      expect(changed.status).toBe(422);
      expect(await countImages(owner)).toBe(1);
    },
  );

  it("dedups a second upload of the same bytes for the same owner only, never for a claimed hash", async () => {
    const bytes = await makeImage("jpeg", 90, 60);
    const hash = sha256(bytes);
    const intent = { filename: "d.jpg", contentType: "image/jpeg", size: bytes.length, sha256: hash };
    const first = await alice.createIntent(intent);
    expect(first.status).toBe(201);
    expect((await putTo(first.body.upload, bytes)).status).toBe(200);
    expect((await alice.settled(first.body.image.id)).status).toBe("ready");

    const again = await alice.createIntent({ ...intent, filename: "again.jpg" });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      deduplicated: true,
      image: { id: first.body.image.id, status: "ready" },
    });
    expect(again.body.upload).toBeUndefined();

    // Another owner with the same hash learns nothing: an ordinary intent.
    const bob = await alice.as(run.bob).createIntent(intent);
    expect(bob.status).toBe(201);
    expect(bob.body.image.id).not.toBe(first.body.image.id);
    expect(bob.body.upload.url).toBeTruthy();
  });

  it("rejects bytes that do not match the claimed hash, and that hash never answers a dedup", async () => {
    const real = await makeImage("png", 70, 50);
    const claimed = sha256(await makeImage("png", 71, 50));
    const intent = {
      filename: "liar.png",
      contentType: "image/png",
      size: real.length,
      sha256: claimed,
      method: "post",
    };
    const created = await alice.createIntent(intent);
    expect(created.status).toBe(201);
    const form = new FormData();
    for (const [k, v] of Object.entries(created.body.upload.fields ?? {})) form.append(k, v);
    form.append("file", new Blob([new Uint8Array(real)], { type: "image/png" }), "liar.png");
    const posted = await fetch(created.body.upload.url, { method: "POST", body: form });
    expect(posted.status).toBe(204);
    expect(await alice.settled(created.body.image.id)).toMatchObject({
      status: "rejected",
      rejectReason: "hash_mismatch",
    });
    const probe = await alice.createIntent({ ...intent, method: "put" });
    expect(probe.status).toBe(201);
  });
});

describe("Idempotency-Key on completion", () => {
  it("replays the completion answer for a retried request", async () => {
    const run = await startImgup(db.make());
    try {
      const api = new Api(run.baseUrl, run.alice);
      const bytes = await makeImage("png");
      const created = await api.createIntent({
        filename: "c.png",
        contentType: "image/png",
        size: bytes.length,
      });
      await putTo(created.body.upload, bytes);
      const path = `/v1/uploads/${created.body.image.id}/complete`;
      type Completed = { image: { id: string; status: string } };
      const first = await api.request<Completed>("POST", path, { headers: { "Idempotency-Key": "done-1" } });
      expect(first.status).toBe(202);
      const retry = await api.request<Completed>("POST", path, { headers: { "Idempotency-Key": "done-1" } });
      expect(retry.status).toBe(202);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      // Re-rendered from the image as it is now: the same image, maybe further along.
      expect(retry.body.image.id).toBe(first.body.image.id);
      expect(["processing", "ready"]).toContain(retry.body.image.status);
    } finally {
      await run.stop();
    }
  });
});
