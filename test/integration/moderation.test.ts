/**
 * Moderation through the real HTTP API, with a real HTTP hook: held images are 404 to everyone but
 * their owner's signed URLs (another owner, anonymous public URLs, variants) until approved;
 * rejection by the hook, by the signed callback and by an admin; a hook that is down keeps the
 * image processing until it answers; app webhooks fire on each outcome. PGlite and (with
 * DATABASE_URL) PostgreSQL.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../client/index.ts";
import { imagePrefix } from "../../src/domain/keys.ts";
import { newWebhookSecret, signatureHeader } from "../../src/domain/webhook-signature.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { listAll } from "../support/maintenance.ts";
import { startReceiver } from "../support/webhook-receiver.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface HookCall {
  headers: IncomingHttpHeaders;
  body: string;
  request: { imageId: string; ownerId: string; sha256: string; url: string; width: number };
  /** SHA-256 of what the request's `url` served while the hook was deciding (null: not 200). */
  fetchedSha256: string | null;
}

/**
 * The moderation hook: answers by the image's SHA-256 (allow unless told otherwise), after
 * fetching the original through the URL it was given; while `down`, 503 without deciding.
 */
async function startHook() {
  const calls: HookCall[] = [];
  const decisions = new Map<string, Record<string, string>>();
  const state = { down: false, refused: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      if (state.down) {
        state.refused++;
        res.writeHead(503).end("down");
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      const request = JSON.parse(body) as HookCall["request"];
      const fetched = await fetch(request.url);
      const bytes = Buffer.from(await fetched.arrayBuffer());
      calls.push({ headers: req.headers, body, request, fetchedSha256: fetched.ok ? sha(bytes) : null });
      const answer = decisions.get(request.sha256) ?? { decision: "allow" };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/moderate`,
    calls,
    decisions,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each(dbTargets())("moderation hook and held images ($name)", ({ name, make }) => {
  // On PostgreSQL with Redis, the delivery record cache checks its versions in the shared KV.
  const kvEnv: Record<string, string> =
    name === "postgres" && process.env.REDIS_URL
      ? { REDIS_URL: process.env.REDIS_URL, REDIS_KEY_PREFIX: `t${Math.random().toString(36).slice(2, 10)}:` }
      : {};
  let run: Running;
  let alice: Api;
  let bob: Api;
  let admin: Api;
  let anonymous: Api;
  let hook: Awaited<ReturnType<typeof startHook>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const validationSecret = newWebhookSecret();
  const webhookSecret = newWebhookSecret();
  let nextSize = 40;

  /** A new image (distinct bytes each time) the hook answers `decision` for. */
  async function imageWith(decision: Record<string, string> | null): Promise<Buffer> {
    nextSize += 2;
    const bytes = await makeImage("jpeg", nextSize, 30);
    if (decision) hook.decisions.set(sha(bytes), decision);
    return bytes;
  }

  async function upload(bytes: Buffer, visibility: "public" | "private" = "public"): Promise<string> {
    const { intent, put } = await alice.uploadBytes(bytes, {
      filename: "m.jpg",
      contentType: "image/jpeg",
      visibility,
    });
    expect(put.status).toBe(200);
    return intent.image.id;
  }

  /** The app events the deployment webhook got for this image, verified with the SDK. */
  async function eventsOf(imageId: string): Promise<string[]> {
    const events = await Promise.all(
      receiver.received.map((r) => verifyWebhook(r.body, r.headers, [webhookSecret])),
    );
    return events.filter((e) => e.data.id === imageId).map((e) => e.type);
  }

  const status = async (url: string) => (await anonymous.request("GET", url)).status;
  const unsigned = (url: string) => url.replace(/\?.*$/, "");

  function signedCallback(body: Record<string, unknown>, secret = validationSecret) {
    const text = JSON.stringify(body);
    const id = `msg_${randomUUID()}`;
    const ts = Math.floor(Date.now() / 1000);
    return anonymous.request<ImageJson & { imageId: string; rejectDetail: string | null }>(
      "POST",
      "/v1/moderation/callback",
      {
        body: text,
        headers: {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(ts),
          "webhook-signature": signatureHeader([secret], id, ts, text),
        },
      },
    );
  }

  beforeAll(async () => {
    hook = await startHook();
    receiver = await startReceiver();
    run = await startImgup(make(), {
      IMGUP_VALIDATION_URL: hook.url,
      IMGUP_VALIDATION_SECRET: validationSecret,
      IMGUP_VALIDATION_TIMEOUT_MS: "20000",
      IMGUP_WEBHOOK_URL: receiver.url,
      IMGUP_WEBHOOK_SECRET: webhookSecret,
      IMGUP_WEBHOOK_ALLOW_PRIVATE: "true",
      IMGUP_WEBHOOK_POLL_MS: "50",
      ...kvEnv,
    });
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
    anonymous = new Api(run.baseUrl);
    admin = new Api(
      run.baseUrl,
      (await run.imgup.auth.createKey({ ownerId: "root", scopes: ["admin"] })).key,
    );
  });
  afterAll(async () => {
    await run?.stop();
    await hook?.close();
    await receiver?.close();
  });

  it("allow: ready; the hook's call is signed and its URL served the original while it decided", async () => {
    const bytes = await imageWith(null);
    const id = await upload(bytes);
    const image = await alice.settled(id);
    expect(image.status).toBe("ready");
    const call = hook.calls.find((c) => c.request.imageId === id);
    expect(call?.request).toMatchObject({ ownerId: "alice", sha256: sha(bytes), width: nextSize });
    expect(call?.fetchedSha256).toBe(sha(bytes));
    await expect(
      verifyWebhook(call?.body ?? "", call?.headers ?? {}, [validationSecret]),
    ).resolves.toBeDefined();
    // The review URL is for images under review only: once ready it serves nothing.
    expect(await status(call?.request.url ?? "")).toBe(404);
    expect(await status(`/i/${id}/original`)).toBe(200);
    await eventually(async () => (await eventsOf(id)).includes("image.ready"));
  });

  it("hold: 404 to everyone but the owner's signed URLs until an admin approves; then served", async () => {
    const bytes = await imageWith({ decision: "hold" });
    const id = await upload(bytes);
    const held = await alice.settled(id);
    expect(held.status).toBe("held");
    const urls = held.urls as { original: string; presets: Record<string, string> };
    // The owner's view carries signed URLs (a held image is served like a private one) ...
    expect(urls.original).toMatch(/\?exp=\d+&sig=/);
    const own = await anonymous.request<string>("GET", urls.original);
    expect(own.status).toBe(200);
    expect(own.headers.get("cache-control")).toMatch(/^private/);
    expect(await status(urls.presets.thumb as string)).toBe(200);
    expect(await status(urls.presets.small as string)).toBe(200);
    // An on-the-fly variant URL the owner asks for is signed too.
    const variant = await alice.request<{ url: string }>("POST", `/v1/images/${id}/urls`, {
      json: { spec: "w_24,f_webp" },
    });
    expect(variant.status).toBe(200);
    expect(await status(variant.body.url)).toBe(200);
    expect(await status(unsigned(variant.body.url))).toBe(404);
    // ... and nobody else gets anything: not another owner, not the public URLs, not a variant.
    expect((await bob.getImage(id)).status).toBe(404);
    expect(await status(`/i/${id}/original`)).toBe(404);
    expect(await status(unsigned(urls.original))).toBe(404);
    expect(await status(`/i/${id}/thumb`)).toBe(404);
    expect(await status(`/i/${id}/small`)).toBe(404);
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images?status=held");
    expect(listed.body.items.map((i) => i.id)).toContain(id);
    await eventually(async () => (await eventsOf(id)).includes("image.held"));

    // An admin sees it as its owner does (signed URLs), to look at it before deciding.
    expect((await alice.request("GET", `/v1/admin/images/${id}`)).status).toBe(403);
    const seen = await admin.request<ImageJson>("GET", `/v1/admin/images/${id}`);
    expect(seen.body.status).toBe("held");
    expect(await status((seen.body.urls as { original: string }).original)).toBe(200);
    // Only the admin scope decides.
    expect((await alice.request("POST", `/v1/admin/images/${id}/approve`)).status).toBe(403);
    const approved = await admin.request<{ status: string }>("POST", `/v1/admin/images/${id}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body.status).toBe("ready");
    expect(await status(`/i/${id}/original`)).toBe(200);
    expect(await status(`/i/${id}/thumb`)).toBe(200);
    expect((await alice.getImage(id)).body.urls?.original).not.toMatch(/sig=/);
    expect(await status(unsigned(variant.body.url))).toBe(200);
    await eventually(async () => {
      const events = await eventsOf(id);
      return events.join(",") === "image.held,image.ready";
    });
    // Approving twice answers the same; rejecting an approved image is a conflict.
    expect((await admin.request("POST", `/v1/admin/images/${id}/approve`)).status).toBe(200);
    expect((await admin.request("POST", `/v1/admin/images/${id}/reject`, { json: {} })).status).toBe(409);
  });

  it("a private held image: the owner's signed URLs only, before and after approval", async () => {
    const id = await upload(await imageWith({ decision: "hold" }), "private");
    const held = await alice.settled(id);
    expect(held.status).toBe("held");
    const original = (held.urls as { original: string }).original;
    expect(await status(original)).toBe(200);
    expect(await status(unsigned(original))).toBe(404);
    expect((await admin.request("POST", `/v1/admin/images/${id}/approve`)).status).toBe(200);
    expect(await status(`/i/${id}/original`)).toBe(404);
    expect(await status(original)).toBe(200);
  });

  it("hold, then the hook's signed callback rejects: rejected (moderation), bytes gone, image.rejected", async () => {
    const id = await upload(await imageWith({ decision: "hold" }));
    const held = await alice.settled(id);
    expect(held.status).toBe("held");
    const original = (held.urls as { original: string }).original;
    expect(await status(original)).toBe(200);

    const body = { imageId: id, decision: "reject", reason: "graphic violence" };
    expect((await signedCallback(body, newWebhookSecret())).status).toBe(401);
    expect((await anonymous.request("POST", "/v1/moderation/callback", { json: body })).status).toBe(401);
    expect((await alice.getImage(id)).body.status).toBe("held");

    const decided = await signedCallback(body);
    expect(decided.status).toBe(200);
    expect(decided.body).toMatchObject({ status: "rejected", rejectReason: "moderation" });
    const image = (await alice.getImage(id)).body;
    expect(image).toMatchObject({
      status: "rejected",
      rejectReason: "moderation",
      rejectDetail: "graphic violence",
    });
    expect(await status(original)).toBe(404);
    expect(await listAll(run, imagePrefix(id))).toEqual([]);
    await eventually(async () => (await eventsOf(id)).join(",") === "image.held,image.rejected");
    // A hold or a decision again changes nothing; approving the rejected image is a conflict.
    expect((await signedCallback({ imageId: id, decision: "hold" })).body.status).toBe("rejected");
    expect((await signedCallback({ imageId: id, decision: "allow" })).status).toBe(409);
  });

  it("the callback's allow approves a held image", async () => {
    const id = await upload(await imageWith({ decision: "hold" }));
    expect((await alice.settled(id)).status).toBe("held");
    expect((await signedCallback({ imageId: id, decision: "allow" })).body.status).toBe("ready");
    expect(await status(`/i/${id}/original`)).toBe(200);
  });

  it("an admin rejects a held image with a reason", async () => {
    const id = await upload(await imageWith({ decision: "hold" }));
    expect((await alice.settled(id)).status).toBe("held");
    const r = await admin.request<{ status: string; rejectDetail: string }>(
      "POST",
      `/v1/admin/images/${id}/reject`,
      { json: { reason: "copyright" } },
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "rejected", rejectDetail: "copyright" });
    expect(await listAll(run, imagePrefix(id))).toEqual([]);
  });

  it("reject by the hook: rejected (moderation) with its reason, nothing stored, never served", async () => {
    const id = await upload(await imageWith({ decision: "reject", reason: "spam" }));
    const image = await alice.settled(id);
    expect(image).toMatchObject({ status: "rejected", rejectReason: "moderation", rejectDetail: "spam" });
    expect(await status(`/i/${id}/original`)).toBe(404);
    // The worker deletes the objects right after the status change it made visible.
    await eventually(async () => (await listAll(run, imagePrefix(id))).length === 0);
    await eventually(async () => (await eventsOf(id)).join(",") === "image.rejected");
  });

  it("documents its routes, the held status and image.held in the OpenAPI document", async () => {
    const doc = (
      await anonymous.request<{ paths: Record<string, Record<string, { tags?: string[] }>> }>(
        "GET",
        "/openapi.json",
      )
    ).body;
    expect(doc.paths["/v1/moderation/callback"]?.post?.tags).toEqual(["Moderation"]);
    expect(doc.paths["/v1/moderation/images/{id}/original"]?.get?.tags).toEqual(["Moderation"]);
    expect(doc.paths["/v1/admin/images/{id}/approve"]?.post?.tags).toEqual(["Admin"]);
    expect(doc.paths["/v1/admin/images/{id}/reject"]?.post?.tags).toEqual(["Admin"]);
    const text = JSON.stringify(doc);
    expect(text).toContain('"image.held"');
    expect(text).toContain('"held"');
  });

  it("hook down: the image stays processing (retried, never allowed); once it answers, ready", async () => {
    hook.state.down = true;
    const refusedBefore = hook.state.refused;
    const id = await upload(await imageWith(null));
    await eventually(async () => hook.state.refused >= refusedBefore + 2);
    const waiting = (await alice.getImage(id)).body;
    expect(waiting.status).toBe("processing");
    expect(await status(`/i/${id}/original`)).toBe(404);
    hook.state.down = false;
    expect((await alice.settled(id)).status).toBe("ready");
    const counts = await run.imgup.metrics.moderation.get();
    const unavailable = counts.values.find((v) => v.labels.decision === "unavailable")?.value ?? 0;
    expect(unavailable).toBeGreaterThanOrEqual(2);
  });
});
