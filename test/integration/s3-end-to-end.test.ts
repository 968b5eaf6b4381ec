import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UPLOAD_KEY_SUFFIX, uploadKey } from "../../src/domain/keys.ts";
import { configureBucketWebhook } from "../../src/storage/s3-notifications.ts";
import { Api, type MultipartUpload, partBytes, putPart, putTo, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, finishedJob, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const MiB = 1024 * 1024;
const TOKEN = randomBytes(16).toString("hex");
const connection = s3TestConnection();
const db = dbTargets().at(-1);

/**
 * The whole path on a real S3 server (Ceph RGW from scripts/local-s3.sh): the client uploads
 * straight to the bucket with URLs imgup signed, and the bucket's own notification is the only
 * thing that tells imgup the upload finished.
 */
describe.skipIf(!connection || !db)("end to end on S3 (Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    run = await startImgup(db.make(), {
      ...s3Env(target, connection),
      IMGUP_EVENTS_TOKEN: TOKEN,
      IMGUP_MAX_UPLOAD_BYTES: String(100 * MiB),
      IMGUP_MULTIPART_PART_SIZE: String(8 * MiB),
    });
    alice = new Api(run.baseUrl, run.alice);
    await configureBucketWebhook({
      ...connection,
      bucket: target.options.bucket,
      topicName: `imgup-e2e-${randomBytes(4).toString("hex")}`,
      pushEndpoint: `${run.baseUrl}/v1/events/storage?token=${TOKEN}`,
      keySuffix: UPLOAD_KEY_SUFFIX,
    });
  });

  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
  }, 120_000);

  // Ceph Pacific picks up a new persistent topic within 30 s; after that events take ~100 ms.
  const settledSlowly = (id: string) => alice.settled(id, 60_000);

  it("a PUT upload becomes ready from the bucket notification alone", async () => {
    const bytes = await makeImage("jpeg", 160, 120);
    const { intent, put } = await alice.uploadBytes(bytes, { filename: "s3.jpg", contentType: "image/jpeg" });
    expect(intent.upload.headers).toMatchObject({ "Content-Type": "image/jpeg", "If-None-Match": "*" });
    expect(put.status).toBe(200);
    expect(await settledSlowly(intent.image.id)).toMatchObject({
      status: "ready",
      width: 160,
      sha256: sha256(bytes),
    });
    const original = await fetch(`${run.baseUrl}/i/${intent.image.id}/original`);
    expect(Buffer.from(await original.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it("a browser-form POST upload becomes ready from the notification alone", async () => {
    const bytes = await makeImage("png", 50, 40);
    const created = await alice.createIntent({
      filename: "form.png",
      contentType: "image/png",
      size: bytes.length,
      method: "post",
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(created.body.upload.fields ?? {})) form.append(k, v);
    form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/png" }), "form.png");
    const posted = await fetch(created.body.upload.url, { method: "POST", body: form });
    expect(posted.status).toBeLessThan(300);
    const id = created.body.image.id;
    const ready = await settledSlowly(id);
    expect(ready).toMatchObject({ status: "ready", format: "png" });

    // Issue 13: a POST policy cannot say "create only", so the same form can be sent again while it
    // is valid. Other bytes of the same size and declared type land at the upload key, never at
    // the original, and nothing processes them again.
    const original = async () =>
      Buffer.from(await (await fetch(`${run.baseUrl}/i/${id}/original`)).arrayBuffer());
    const served = await original();
    expect(served.equals(bytes)).toBe(true);
    const html = Buffer.alloc(bytes.length, 0x20);
    html.write("<html><script>alert(document.cookie)</script></html>");
    const again = new FormData();
    for (const [k, v] of Object.entries(created.body.upload.fields ?? {})) again.append(k, v);
    again.append("file", new Blob([new Uint8Array(html)], { type: "image/png" }), "form.png");
    expect((await fetch(created.body.upload.url, { method: "POST", body: again })).status).toBeLessThan(300);
    await eventually(async () => (await run.imgup.store.head(uploadKey(id)))?.size === html.length);
    expect(await run.imgup.processing.process(id)).toBe("skipped");
    expect((await original()).equals(bytes)).toBe(true);
    // Compared without urls: urls.source is signed with an expiry counted from each read.
    expect({ ...(await alice.getImage(id)).body, urls: null }).toEqual({ ...ready, urls: null });
  });

  it("a 60 MB multipart upload in parallel parts, with a re-sent part and a resume, becomes ready", async () => {
    // Uncompressed noise: a real, decodable 60 MB image.
    const raw = randomBytes(5000 * 4000 * 3);
    const png = await sharp(raw, { raw: { width: 5000, height: 4000, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    expect(png.length).toBeGreaterThan(60_000_000);
    const created = await alice.createIntent({
      filename: "huge.png",
      contentType: "image/png",
      size: png.length,
      method: "multipart",
    });
    expect(created.status).toBe(201);
    const upload = created.body.upload as unknown as MultipartUpload;
    expect(upload.partCount).toBe(Math.ceil(png.length / (8 * MiB)));
    // First client: half of the parts in parallel (part 1 twice), then it "crashes".
    const firstHalf = upload.parts.slice(0, Math.ceil(upload.partCount / 2));
    await Promise.all(firstHalf.map((p) => putPart(p.url, partBytes(png, upload, p.partNumber))));
    const part1 = upload.parts[0];
    if (!part1) throw new Error("no part 1");
    await putPart(part1.url, partBytes(png, upload, 1));
    // Second client: resumes from the part list.
    const status = await alice.request<{
      uploaded: { partNumber: number; etag: string }[];
      pending: { partNumber: number; url: string }[];
    }>("GET", `/v1/uploads/${created.body.image.id}/parts`);
    expect(status.body.uploaded.map((p) => p.partNumber)).toEqual(firstHalf.map((p) => p.partNumber));
    const rest = await Promise.all(
      status.body.pending.map(async (p) => ({
        partNumber: p.partNumber,
        etag: await putPart(p.url, partBytes(png, upload, p.partNumber)),
      })),
    );
    const parts = [...status.body.uploaded.map(({ partNumber, etag }) => ({ partNumber, etag })), ...rest];
    const done = await alice.request("POST", `/v1/uploads/${created.body.image.id}/complete`, {
      json: { parts },
    });
    expect(done.status).toBe(202);
    expect(await settledSlowly(created.body.image.id)).toMatchObject({
      status: "ready",
      width: 5000,
      height: 4000,
      size: png.length,
      sha256: sha256(png),
    });
  }, 180_000);

  it("after ready, parts sent again and the multipart upload completed again change nothing that is served", async () => {
    const bytes = await makeImage("jpeg", 120, 90);
    const created = await alice.createIntent({
      filename: "mp.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
      method: "multipart",
    });
    expect(created.status).toBe(201);
    const id = created.body.image.id;
    const upload = created.body.upload as unknown as MultipartUpload;
    const part1 = upload.parts[0];
    if (!part1 || upload.partCount !== 1) throw new Error("expected a one-part multipart upload");
    const parts = [{ partNumber: 1, etag: await putPart(part1.url, bytes) }];
    const complete = () => alice.request("POST", `/v1/uploads/${id}/complete`, { json: { parts } });
    expect((await complete()).status).toBe(202);
    const ready = await settledSlowly(id);
    expect(ready).toMatchObject({ status: "ready", sha256: sha256(bytes) });
    const original = async () =>
      Buffer.from(await (await fetch(`${run.baseUrl}/i/${id}/original`)).arrayBuffer());
    expect((await original()).equals(bytes)).toBe(true);

    // Whatever the storage lets a client do with the intent's part URL and upload id after ready
    // (RGW refuses the part: the upload id is gone), and a completion sent again, the original stays.
    const html = Buffer.alloc(bytes.length, 0x20);
    html.write("<html><script>alert(document.cookie)</script></html>");
    const resent = await fetch(part1.url, { method: "PUT", body: new Uint8Array(html) });
    const etag = resent.headers.get("etag");
    await run.imgup.store
      .completeMultipartUpload(uploadKey(id), upload.uploadId, [
        { partNumber: 1, etag: etag ?? parts[0]?.etag ?? "" },
      ])
      .catch(() => undefined);
    expect((await complete()).status).toBe(202);
    expect(await run.imgup.processing.process(id)).toBe("skipped");
    expect((await original()).equals(bytes)).toBe(true);
    expect({ ...(await alice.getImage(id)).body, urls: null }).toEqual({ ...ready, urls: null });
  });

  it("the same real notification delivered 5 times leaves one ready image and one job run", async () => {
    const bytes = await makeImage("webp", 40, 30);
    const { intent } = await alice.uploadBytes(bytes, { filename: "dup.webp", contentType: "image/webp" });
    await settledSlowly(intent.image.id);
    const captured = JSON.parse(
      readFileSync(new URL("../fixtures/events/ceph-put.json", import.meta.url), "utf8"),
    );
    captured.Records[0].s3.bucket.name = bucket.options.bucket;
    captured.Records[0].s3.object.key = uploadKey(intent.image.id);
    const hook = new Api(run.baseUrl);
    for (let i = 0; i < 5; i++) {
      const r = await hook.request("POST", `/v1/events/storage?token=${TOKEN}`, { json: captured });
      expect(r.body).toMatchObject({ received: 1, duplicates: 1, enqueued: 0 });
    }
    expect(await finishedJob(run.imgup.jobs, `process:${intent.image.id}`)).toMatchObject({
      status: "done",
      attempts: 1,
    });
  });

  it("the storage itself refuses a tampered URL, another Content-Type, a larger body, a second PUT", async () => {
    const bytes = await makeImage("jpeg", 30, 30);
    const created = await alice.createIntent({
      filename: "x.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    const upload = created.body.upload;
    const tampered = new URL(upload.url);
    tampered.searchParams.set("X-Amz-Expires", "604800");
    expect((await putTo(upload, bytes, {}, tampered.toString())).status).toBe(403);
    expect((await putTo(upload, bytes, { "content-type": "text/html" })).status).toBe(403);
    expect((await putTo(upload, Buffer.concat([bytes, Buffer.alloc(10)]))).status).toBe(403);
    expect((await putTo(upload, bytes)).status).toBe(200);
    expect((await putTo(upload, bytes)).status).toBe(412);
    const post = await alice.createIntent({
      filename: "p.png",
      contentType: "image/png",
      size: 100,
      method: "post",
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(post.body.upload.fields ?? {}))
      form.append(k, k === "key" ? `${v}-other` : v);
    form.append("file", new Blob([Buffer.alloc(100)], { type: "image/png" }), "p.png");
    expect((await fetch(post.body.upload.url, { method: "POST", body: form })).status).toBe(403);
  });
});
