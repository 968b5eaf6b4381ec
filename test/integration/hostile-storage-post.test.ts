import { randomBytes } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Api, type IntentResponse } from "../support/api.ts";
import { eventually } from "../support/harness.ts";
import { type ServeChild, startServeChild } from "../support/serve-child.ts";

/**
 * Issue 12, item 1: a refused browser form upload to the embedded storage used to answer 403 and
 * then kill the process (busboy's "Unexpected end of file" with no listener). imgup runs in a
 * child process so such a crash is an exit this test sees.
 */
const URL_TTL_SECONDS = 5;

describe("POST /storage-post refusals never take imgup down", () => {
  let serve: ServeChild;
  let api: Api;
  let image: Buffer;

  beforeAll(async () => {
    serve = await startServeChild({ IMGUP_UPLOAD_URL_TTL: String(URL_TTL_SECONDS) });
    api = new Api(serve.baseUrl, serve.apiKey);
    // Random pixels do not compress: a file part of a few hundred KB, well past busboy's buffers.
    image = await sharp(randomBytes(300 * 300 * 3), { raw: { width: 300, height: 300, channels: 3 } })
      .png()
      .toBuffer();
    expect(image.length).toBeGreaterThan(200 * 1024);
  }, 120_000);
  // Each refusal is judged on its own: a process an earlier one killed is started again.
  beforeEach(async () => {
    if (!serve.exit()) return;
    await serve.stop();
    serve = await startServeChild({ IMGUP_UPLOAD_URL_TTL: String(URL_TTL_SECONDS) });
    api = new Api(serve.baseUrl, serve.apiKey);
  }, 120_000);
  afterAll(async () => {
    await serve?.stop();
  });

  async function postIntent(): Promise<IntentResponse["upload"]> {
    const created = await api.createIntent({
      filename: "x.png",
      contentType: "image/png",
      size: image.length,
      method: "post",
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.upload;
  }

  async function postForm(url: string, fields: Record<string, string>, file: Buffer) {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", new Blob([new Uint8Array(file)], { type: "image/png" }), "x.png");
    const res = await fetch(url, { method: "POST", body: form });
    const text = await res.text();
    return { status: res.status, text };
  }

  /** Alive means: not exited, and still answering, a few requests after the refusal. */
  async function expectAlive() {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${serve.baseUrl}/healthz`).catch((err) => err as Error);
      expect(serve.exit(), serve.output().slice(-3000)).toBeNull();
      expect(res instanceof Response ? res.status : String(res)).toBe(200);
    }
    // The crash guard is the last resort: an exception it had to catch is still a bug.
    expect(serve.lines.filter((l) => String(l.msg).startsWith("uncaught exception"))).toEqual([]);
  }

  it("no policy at all (a bare file), 403", async () => {
    const res = await postForm(`${serve.baseUrl}/storage-post`, {}, image);
    expect(res.status).toBe(403);
    await expectAlive();
  });

  it("a garbage policy, 403", async () => {
    const upload = await postIntent();
    const fields = { ...upload.fields, policy: randomBytes(200).toString("base64") };
    const res = await postForm(upload.url, fields, image);
    expect(res.status).toBe(403);
    expect(res.text).toContain("signature_mismatch");
    await expectAlive();
  });

  it("a key other than the policy's, 403", async () => {
    const upload = await postIntent();
    const res = await postForm(upload.url, { ...upload.fields, key: "uploads/elsewhere" }, image);
    expect(res.status).toBe(403);
    expect(res.text).toContain("policy_condition_failed");
    await expectAlive();
  });

  it("a Content-Type other than the policy's, 403", async () => {
    const upload = await postIntent();
    const res = await postForm(upload.url, { ...upload.fields, "Content-Type": "image/gif" }, image);
    expect(res.status).toBe(403);
    expect(res.text).toContain("content_type_mismatch");
    await expectAlive();
  });

  it("replaying a legitimate form (the object exists), 409", async () => {
    const upload = await postIntent();
    const first = await postForm(upload.url, upload.fields ?? {}, image);
    expect(first.status, first.text).toBe(204);
    const again = await postForm(upload.url, upload.fields ?? {}, image);
    expect(again.status).toBe(409);
    expect(again.text).toContain("object_exists");
    await expectAlive();
  });

  it("an expired policy, 403", async () => {
    const upload = await postIntent();
    const expiresAt = Date.parse(upload.expiresAt);
    // Waits for the policy's own expiry (a condition, not a margin): the server checks the same clock.
    await eventually(async () => Date.now() > expiresAt + 50, URL_TTL_SECONDS * 1000 + 30_000);
    const res = await postForm(upload.url, upload.fields ?? {}, image);
    expect(res.status).toBe(403);
    expect(res.text).toContain("url_expired");
    await expectAlive();
  });
});
