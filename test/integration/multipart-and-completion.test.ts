import { randomBytes } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type MultipartUpload, partBytes, putPart, putTo, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, finishedJob, type Running, startImgup } from "../support/harness.ts";

const MiB = 1024 * 1024;

/** A JPEG of noise: incompressible, so it is as large as we need and still decodes. */
async function bigJpeg(width: number, height: number): Promise<Buffer> {
  return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 97 })
    .toBuffer();
}

const target = dbTargets()[0];
if (!target) throw new Error("no database target");

describe("multipart uploads, completion hints and aborts (embedded storage)", () => {
  let run: Running;
  let alice: Api;
  let jpeg: Buffer;

  beforeAll(async () => {
    run = await startImgup(target.make(), {
      IMGUP_MAX_UPLOAD_BYTES: String(40 * MiB),
      IMGUP_MULTIPART_PART_SIZE: String(5 * MiB),
    });
    alice = new Api(run.baseUrl, run.alice);
    jpeg = await bigJpeg(4000, 3000);
    expect(jpeg.length).toBeGreaterThan(10 * MiB);
  });
  afterAll(async () => run?.stop());

  const intentFor = async (bytes: Buffer) => {
    const r = await alice.createIntent({
      filename: "big.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
      method: "multipart",
    });
    expect(r.status).toBe(201);
    return { image: r.body.image, upload: r.body.upload as unknown as MultipartUpload };
  };

  it("uploads parts in parallel, survives a re-sent part, and completes to ready", async () => {
    const { image, upload } = await intentFor(jpeg);
    expect(upload).toMatchObject({
      method: "multipart",
      partSize: 5 * MiB,
      partCount: Math.ceil(jpeg.length / (5 * MiB)),
    });
    expect(upload.parts).toHaveLength(upload.partCount);
    const etags = await Promise.all(
      upload.parts.map((p) => putPart(p.url, partBytes(jpeg, upload, p.partNumber))),
    );
    const first = upload.parts[0];
    if (!first) throw new Error("no parts");
    const resent = await putPart(first.url, partBytes(jpeg, upload, 1));
    expect(resent).toBe(etags[0]);
    const parts = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
    const done = await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: { parts } });
    expect(done.status).toBe(202);
    expect(await alice.settled(image.id)).toMatchObject({
      status: "ready",
      size: jpeg.length,
      sha256: sha256(jpeg),
    });
    const again = await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: { parts } });
    expect(again.status).toBe(202);
    expect(await finishedJob(run.imgup.jobs, `process:${image.id}`)).toMatchObject({
      status: "done",
      attempts: 1,
    });
  });

  it("resumes from the part list after an interruption", async () => {
    const { image, upload } = await intentFor(jpeg);
    const first = upload.parts[0];
    if (!first) throw new Error("no parts");
    const etag1 = await putPart(first.url, partBytes(jpeg, upload, 1));
    // The client crashed; a new one asks what the storage has.
    const status = await alice.request<{
      uploaded: { partNumber: number; etag: string; size: number }[];
      pending: { partNumber: number; url: string }[];
    }>("GET", `/v1/uploads/${image.id}/parts`);
    expect(status.status).toBe(200);
    expect(status.body.uploaded).toEqual([{ partNumber: 1, etag: etag1, size: 5 * MiB }]);
    expect(status.body.pending.map((p) => p.partNumber)).toEqual(
      Array.from({ length: upload.partCount - 1 }, (_, i) => i + 2),
    );
    const rest = await Promise.all(
      status.body.pending.map(async (p) => ({
        partNumber: p.partNumber,
        etag: await putPart(p.url, partBytes(jpeg, upload, p.partNumber)),
      })),
    );
    const parts = [{ partNumber: 1, etag: etag1 }, ...rest];
    expect(
      (await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: { parts } })).status,
    ).toBe(202);
    expect((await alice.settled(image.id)).status).toBe("ready");
  });

  it("refuses a completion with a wrong ETag or no parts, and an abort frees the upload", async () => {
    const { image, upload } = await intentFor(jpeg);
    const parts = await Promise.all(
      upload.parts.map(async (p) => ({
        partNumber: p.partNumber,
        etag: await putPart(p.url, partBytes(jpeg, upload, p.partNumber)),
      })),
    );
    const bad = parts.map((p, i) => (i === 0 ? { ...p, etag: '"0000"' } : p));
    const refused = await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: { parts: bad } });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: "invalid_part" });
    const none = await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: {} });
    expect(none.status).toBe(400);
    expect((await alice.request("DELETE", `/v1/uploads/${image.id}`)).status).toBe(204);
    expect((await alice.getImage(image.id)).status).toBe(404);
    expect((await alice.request("DELETE", `/v1/uploads/${image.id}`)).status).toBe(404);
    const late = await alice.request("POST", `/v1/uploads/${image.id}/complete`, { json: { parts } });
    expect(late.status).toBe(404);
  });

  it("treats complete on a PUT upload as an idempotent hint", async () => {
    const bytes = await makeImage("png");
    const created = await alice.createIntent({
      filename: "h.png",
      contentType: "image/png",
      size: bytes.length,
    });
    const early = await alice.request("POST", `/v1/uploads/${created.body.image.id}/complete`);
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: "upload_incomplete" });
    expect((await putTo(created.body.upload, bytes)).status).toBe(200);
    const hint = await alice.request("POST", `/v1/uploads/${created.body.image.id}/complete`);
    expect(hint.status).toBe(202);
    expect((await alice.settled(created.body.image.id)).status).toBe("ready");
    expect(await finishedJob(run.imgup.jobs, `process:${created.body.image.id}`)).toMatchObject({
      attempts: 1,
    });
    const abortReady = await alice.request("DELETE", `/v1/uploads/${created.body.image.id}`);
    expect(abortReady.status).toBe(409);
  });

  it("does not hand out part URLs for a PUT upload or another owner's upload", async () => {
    const bytes = await makeImage("png");
    const created = await alice.createIntent({
      filename: "h.png",
      contentType: "image/png",
      size: bytes.length,
    });
    expect((await alice.request("GET", `/v1/uploads/${created.body.image.id}/parts`)).status).toBe(409);
    const { image } = await intentFor(jpeg);
    expect((await alice.as(run.bob).request("GET", `/v1/uploads/${image.id}/parts`)).status).toBe(404);
    expect((await alice.as(run.bob).request("DELETE", `/v1/uploads/${image.id}`)).status).toBe(404);
  });
});
