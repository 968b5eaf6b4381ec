import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originalKey, uploadKey } from "../../src/domain/keys.ts";
import { Api, putTo, sha256 } from "../support/api.ts";
import { jpegClaimingDimensions, makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, finishedJob, type Running, startImgup } from "../support/harness.ts";

/** The foundation's upload path, driven through the real HTTP API and the embedded storage's URLs. */
describe.each(dbTargets())("upload path on $name", (target) => {
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    run = await startImgup(target.make());
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  it.each(["jpeg", "png", "webp", "gif"] as const)(
    "a %s upload becomes ready without any further call",
    async (fmt) => {
      const bytes = await makeImage(fmt, 120, 80);
      const { intent, put } = await alice.uploadBytes(bytes, {
        filename: `photo.${fmt}`,
        contentType: `image/${fmt}`,
      });
      expect(intent.image.status).toBe("pending");
      expect(intent.upload.method).toBe("put");
      expect(put.status).toBe(200);
      const image = await alice.settled(intent.image.id);
      expect(image).toMatchObject({
        status: "ready",
        width: 120,
        height: 80,
        format: fmt,
        contentType: `image/${fmt}`,
        size: bytes.length,
        sha256: sha256(bytes),
        rejectReason: null,
      });
    },
  );

  it("serves the original with its real type, nosniff, a sandbox CSP and the original filename", async () => {
    const bytes = await makeImage("png", 30, 20);
    const { intent } = await alice.uploadBytes(bytes, {
      filename: "Ünïcode snap.png",
      contentType: "image/png",
    });
    const image = await alice.settled(intent.image.id);
    expect(image.urls?.original).toBe(`${run.baseUrl}/i/${image.id}/original`);
    const res = await fetch(image.urls?.original ?? "");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toContain("sandbox");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("content-disposition")).toContain("filename*=UTF-8''%C3%9Cn%C3%AFcode%20snap.png");
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    const etag = res.headers.get("etag") ?? "";
    const again = await fetch(image.urls?.original ?? "", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  it("rejects bytes that do not match the declared type", async () => {
    const png = await makeImage("png");
    const { intent } = await alice.uploadBytes(png, { filename: "a.jpg", contentType: "image/jpeg" });
    const image = await alice.settled(intent.image.id);
    expect(image).toMatchObject({ status: "rejected", rejectReason: "type_mismatch" });
    // The status changes first, then the bytes go: wait for the delete.
    await eventually(async () => (await run.imgup.store.head(originalKey(intent.image.id))) === null);
  });

  it("rejects a text file renamed .jpg and deletes its object", async () => {
    const text = Buffer.from("hello, this is not an image at all\n".repeat(20));
    const { intent } = await alice.uploadBytes(text, { filename: "notes.jpg", contentType: "image/jpeg" });
    const image = await alice.settled(intent.image.id);
    expect(image).toMatchObject({ status: "rejected", rejectReason: "not_an_image" });
    await eventually(async () => (await run.imgup.store.head(originalKey(image.id))) === null);
    const original = await fetch(`${run.baseUrl}/i/${image.id}/original`);
    expect(original.status).toBe(404);
  });

  it("rejects a truncated JPEG as corrupt", async () => {
    const jpeg = await makeImage("jpeg", 400, 300);
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    const { intent } = await alice.uploadBytes(truncated, { filename: "cut.jpg", contentType: "image/jpeg" });
    expect(await alice.settled(intent.image.id)).toMatchObject({
      status: "rejected",
      rejectReason: "corrupt",
    });
  });

  it("rejects an image whose header claims more pixels than the limit, before decoding", async () => {
    const bomb = await jpegClaimingDimensions(60_000, 60_000);
    expect(bomb.length).toBeLessThan(5_000);
    const { intent } = await alice.uploadBytes(bomb, { filename: "bomb.jpg", contentType: "image/jpeg" });
    const image = await alice.settled(intent.image.id);
    expect(image).toMatchObject({ status: "rejected", rejectReason: "too_many_pixels" });
  });

  it("refuses a zero-byte upload at the intent, and an empty body on the URL", async () => {
    const zero = await alice.createIntent({ filename: "empty.jpg", contentType: "image/jpeg", size: 0 });
    expect(zero.status).toBe(400);
    expect(zero.headers.get("content-type")).toContain("application/problem+json");
    expect(zero.body).toMatchObject({ code: "validation_failed", status: 400 });
    const created = await alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: 100 });
    const put = await putTo(created.body.upload, Buffer.alloc(0));
    expect(put.status).toBe(403);
    expect(put.body).toContain("content_length_mismatch");
  });

  it("refuses an oversize intent with 413 and a body larger than signed on the URL", async () => {
    const tooBig = await alice.createIntent({
      filename: "big.jpg",
      contentType: "image/jpeg",
      size: 21 * 1024 * 1024,
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.code).toBe("payload_too_large");
    const bytes = await makeImage("jpeg");
    const created = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    const put = await putTo(created.body.upload, Buffer.concat([bytes, Buffer.alloc(1000)]));
    expect(put.status).toBe(403);
    expect(put.body).toContain("content_length_mismatch");
    expect((await alice.getImage(created.body.image.id)).body.status).toBe("pending");
  });

  it("refuses a tampered upload URL, a different Content-Type and a second PUT to the same key", async () => {
    const bytes = await makeImage("jpeg");
    const created = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    const url = new URL(created.body.upload.url);
    const tampered = new URL(url);
    tampered.searchParams.set("len", String(bytes.length + 10));
    for (const [k, v] of url.searchParams)
      if (/sig/i.test(k)) tampered.searchParams.set(k, `${v.slice(0, -2)}xx`);
    expect((await putTo(created.body.upload, bytes, {}, tampered.toString())).status).toBe(403);
    const wrongType = await putTo(created.body.upload, bytes, { "content-type": "image/png" });
    expect(wrongType.status).toBe(403);
    expect(wrongType.body).toContain("content_type_mismatch");
    expect((await putTo(created.body.upload, bytes)).status).toBe(200);
    const second = await putTo(created.body.upload, bytes);
    expect(second.status).toBe(409);
    expect(second.body).toContain("object_exists");
    expect((await alice.settled(created.body.image.id)).status).toBe("ready");
  });

  it("rejects a declared sha256 that the bytes do not match", async () => {
    const bytes = await makeImage("jpeg");
    const other = sha256(Buffer.from("something else"));
    const created = await alice.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
      sha256: other,
    });
    const put = await putTo(created.body.upload, bytes);
    // The embedded storage checks a signed checksum like S3 does; the worker is the backstop.
    if (put.status === 200) {
      expect(await alice.settled(created.body.image.id)).toMatchObject({ rejectReason: "hash_mismatch" });
    } else {
      expect(put.status).toBe(400);
      expect((await alice.getImage(created.body.image.id)).body.status).toBe("pending");
    }
  });

  it("running the same job twice changes nothing", async () => {
    const bytes = await makeImage("webp");
    const { intent } = await alice.uploadBytes(bytes, { filename: "a.webp", contentType: "image/webp" });
    const first = await alice.settled(intent.image.id);
    expect(await run.imgup.processing.process(intent.image.id)).toBe("skipped");
    const event = { key: uploadKey(first.id), size: bytes.length, etag: null, source: "test" };
    expect(await run.imgup.storageEvents.objectCreated(event)).toBe("duplicate");
    const second = (await alice.getImage(intent.image.id)).body;
    // urls.source is signed with an expiry counted from each read: compared apart.
    expect({ ...second, urls: null }).toEqual({ ...first, urls: null });
    expect(second.urls?.original).toBe(first.urls?.original);
    // The job is marked done just after the image is ready.
    const job = await finishedJob(run.imgup.jobs, `process:${intent.image.id}`);
    expect(job).toMatchObject({ status: "done", attempts: 1 });
  });

  it("hides another owner's images: 404 on get, delete and original; absent from the list", async () => {
    const bytes = await makeImage("jpeg");
    const { intent } = await alice.uploadBytes(bytes, {
      filename: "mine.jpg",
      contentType: "image/jpeg",
      visibility: "private",
    });
    await alice.settled(intent.image.id);
    const bob = alice.as(run.bob);
    expect((await bob.getImage(intent.image.id)).status).toBe(404);
    expect((await bob.getImage(intent.image.id)).body).toMatchObject({ code: "image_not_found" });
    expect((await bob.request("DELETE", `/v1/images/${intent.image.id}`)).status).toBe(404);
    expect(
      (await bob.request("PATCH", `/v1/images/${intent.image.id}`, { json: { visibility: "public" } }))
        .status,
    ).toBe(404);
    const list = await bob.request<{ items: { id: string }[] }>("GET", "/v1/images");
    expect(list.body.items.map((i) => i.id)).not.toContain(intent.image.id);
    expect((await alice.getImage(intent.image.id)).status).toBe(200);
  });

  it("serves a private original only with a valid, unexpired signature (404 otherwise)", async () => {
    const bytes = await makeImage("jpeg");
    const { intent } = await alice.uploadBytes(bytes, {
      filename: "secret.jpg",
      contentType: "image/jpeg",
      visibility: "private",
    });
    const image = await alice.settled(intent.image.id);
    const signed = new URL(image.urls?.original ?? "");
    expect(signed.searchParams.get("sig")).toBeTruthy();
    expect((await fetch(`${run.baseUrl}/i/${image.id}/original`)).status).toBe(404);
    const ok = await fetch(signed);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toMatch(/^private, max-age=\d+$/);
    expect(Buffer.from(await ok.arrayBuffer()).equals(bytes)).toBe(true);
    const badSig = new URL(signed);
    badSig.searchParams.set("sig", "A".repeat(43));
    expect((await fetch(badSig)).status).toBe(404);
    const moved = new URL(signed);
    moved.searchParams.set("exp", String(Number(signed.searchParams.get("exp")) + 1000));
    expect((await fetch(moved)).status).toBe(404);
    const expired = new URL(signed);
    expired.searchParams.set("exp", "1000");
    expect((await fetch(expired)).status).toBe(404);
  });
});
