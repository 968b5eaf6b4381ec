import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ObjectStore, PresignedRequest } from "../../src/storage/object-store.ts";

export type ContractUpload = (
  presigned: PresignedRequest,
  body: Buffer,
  overrides?: { headers?: Record<string, string> },
) => Promise<{ status: number; headers: Record<string, string> }>;

export interface ContractHarness {
  store: ObjectStore;
  /** Sends a presigned request the way a client would (over HTTP for every backend). */
  upload: ContractUpload;
  cleanup: () => Promise<void>;
}

/** Where backends legitimately differ. */
export interface ContractCapabilities {
  /** A second PUT to a plain presigned URL is refused (local driver) rather than overwriting (S3). */
  noOverwriteOnPresignedPut: boolean;
}

const MiB = 1024 * 1024;
const md5Etag = (body: Buffer) => `"${createHash("md5").update(body).digest("hex")}"`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isRefused = (status: number) => status >= 400 && status < 500;

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Flips one character of the signature parameter (`sig`, `X-Amz-Signature`, …) of a presigned URL. */
function tamperSignature(url: string): string {
  const u = new URL(url);
  const name = [...u.searchParams.keys()].find((k) => /sig/i.test(k));
  if (!name) throw new Error(`no signature parameter in ${url}`);
  const value = u.searchParams.get(name) ?? "";
  u.searchParams.set(name, (value[0] === "A" ? "B" : "A") + value.slice(1));
  return u.toString();
}

/**
 * The behaviour every ObjectStore must show, whatever the backend. Every test works under its own
 * random prefix, so the suite can run against a shared bucket.
 */
export function runObjectStoreContract(
  name: string,
  makeStore: () => Promise<ContractHarness>,
  options: { capabilities?: Partial<ContractCapabilities> } = {},
): void {
  const caps: ContractCapabilities = { noOverwriteOnPresignedPut: false, ...options.capabilities };

  describe(`ObjectStore contract: ${name}`, () => {
    let h: ContractHarness;
    const run = `contract-${randomUUID()}`;
    const base = () => `${run}/${randomUUID()}`;

    beforeAll(async () => {
      h = await makeStore();
    });
    afterAll(async () => {
      await h?.store.deletePrefix(`${run}/`).catch(() => {});
      await h?.cleanup();
    });

    const presignPut = (key: string, body: Buffer, contentType = "image/png", expiresInSeconds = 300) =>
      h.store.presignPut({ key, contentType, contentLength: body.length, expiresInSeconds });

    describe("server-side objects", () => {
      it("put, head and getStream round-trip size, etag, content type and bytes", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(3000);
        const written = await h.store.put(key, body, { contentType: "image/png" });
        expect(written).toMatchObject({ key, size: 3000, etag: md5Etag(body), contentType: "image/png" });

        const head = await h.store.head(key);
        expect(head).toMatchObject({ key, size: 3000, etag: md5Etag(body), contentType: "image/png" });
        expect(head?.lastModified).toBeInstanceOf(Date);

        const got = await h.store.getStream(key);
        expect(got?.head).toMatchObject({ size: 3000, etag: md5Etag(body), contentType: "image/png" });
        expect((await readAll(got?.body as Readable)).equals(body)).toBe(true);
      });

      it("put accepts a stream body", async () => {
        const key = `${base()}/streamed`;
        const parts = [randomBytes(1000), randomBytes(2000)];
        const head = await h.store.put(key, Readable.from(parts), {
          contentType: "image/webp",
          contentLength: 3000,
        });
        expect(head).toMatchObject({ size: 3000, etag: md5Etag(Buffer.concat(parts)) });
      });

      it("head and getStream of a missing key are null", async () => {
        expect(await h.store.head(`${base()}/missing`)).toBeNull();
        expect(await h.store.getStream(`${base()}/missing`)).toBeNull();
      });

      it("put overwrites by default and refuses with ifNoneMatch", async () => {
        const key = `${base()}/original`;
        await h.store.put(key, Buffer.from("one"), { contentType: "text/plain" });
        await h.store.put(key, Buffer.from("two!"), { contentType: "text/plain" });
        await expect(
          h.store.put(key, Buffer.from("three"), { contentType: "text/plain", ifNoneMatch: true }),
        ).rejects.toMatchObject({ code: "object_exists" });
        expect(await h.store.head(key)).toMatchObject({ size: 4, etag: md5Etag(Buffer.from("two!")) });
      });

      it("copyIfMatch copies the version it names, and nothing when the source changed or is gone", async () => {
        const b = base();
        const first = randomBytes(2000);
        await h.store.put(`${b}/upload`, first, { contentType: "image/jpeg" });
        expect(await h.store.copyIfMatch(`${b}/upload`, `${b}/original`, md5Etag(first))).toBe(true);
        const copied = await h.store.getStream(`${b}/original`);
        expect(copied?.head).toMatchObject({ size: 2000, etag: md5Etag(first), contentType: "image/jpeg" });
        expect((await readAll(copied?.body as Readable)).equals(first)).toBe(true);

        // The source replaced after validation: the stale ETag copies nothing, the copy stays.
        const second = randomBytes(3000);
        await h.store.put(`${b}/upload`, second, { contentType: "text/html" });
        expect(await h.store.copyIfMatch(`${b}/upload`, `${b}/original`, md5Etag(first))).toBe(false);
        expect(await h.store.head(`${b}/original`)).toMatchObject({ size: 2000, etag: md5Etag(first) });
        // Replacing the source later does not touch the copy either.
        expect(await h.store.head(`${b}/upload`)).toMatchObject({ size: 3000 });

        expect(await h.store.copyIfMatch(`${b}/missing`, `${b}/other`, md5Etag(first))).toBe(false);
        expect(await h.store.head(`${b}/other`)).toBeNull();
      });

      it("delete removes an object; deleting a missing key is fine", async () => {
        const key = `${base()}/original`;
        await h.store.put(key, Buffer.from("x"), { contentType: "text/plain" });
        await h.store.delete(key);
        expect(await h.store.head(key)).toBeNull();
        await h.store.delete(key);
      });

      it("deletePrefix deletes every object under the prefix, counts them, and spares the rest", async () => {
        const b = base();
        const doomed = [`${b}/img1/original`, `${b}/img1/v/a.webp`, `${b}/img1/v/b.webp`];
        const spared = [`${b}/img2/original`, `${b}/img10/original`];
        for (const key of [...doomed, ...spared])
          await h.store.put(key, Buffer.from(key), { contentType: "text/plain" });
        expect(await h.store.deletePrefix(`${b}/img1/`)).toBe(3);
        for (const key of doomed) expect(await h.store.head(key)).toBeNull();
        for (const key of spared) expect(await h.store.head(key)).not.toBeNull();
        expect((await h.store.list(`${b}/img1/`)).objects).toEqual([]);
      });

      it("list returns keys in byte order, paged with a cursor", async () => {
        const b = base();
        const names = ["b", "a/c", "a-b", "a/b/c", "c", "a0"];
        for (const n of names) await h.store.put(`${b}/${n}`, Buffer.from(n), { contentType: "text/plain" });
        const expected = names
          .map((n) => `${b}/${n}`)
          .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

        const all = await h.store.list(`${b}/`);
        expect(all.objects.map((o) => o.key)).toEqual(expected);
        expect(all.nextCursor).toBeUndefined();
        const first = all.objects[0];
        expect(first?.size).toBe(Buffer.byteLength(first?.key.slice(b.length + 1) ?? ""));
        expect(first?.lastModified).toBeInstanceOf(Date);

        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await h.store.list(`${b}/`, { limit: 4, ...(cursor ? { cursor } : {}) });
          expect(page.objects.length).toBeLessThanOrEqual(4);
          seen.push(...page.objects.map((o) => o.key));
          cursor = page.nextCursor;
          pages++;
        } while (cursor && pages < 10);
        expect(seen).toEqual(expected);
        expect(pages).toBe(2);

        expect((await h.store.list(`${b}/a/`)).objects.map((o) => o.key)).toEqual([`${b}/a/b/c`, `${b}/a/c`]);
        expect((await h.store.list(`${b}/zzz`)).objects).toEqual([]);
      });
    });

    describe("presigned PUT", () => {
      it("uploads, and the object shows the signed content type and size", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(2048);
        const presigned = await presignPut(key, body);
        expect(presigned.method).toBe("PUT");
        expect(presigned.expiresAt.getTime()).toBeGreaterThan(Date.now());
        const res = await h.upload(presigned, body);
        expect(res.status).toBe(200);
        expect(res.headers.etag).toBe(md5Etag(body));
        expect(await h.store.head(key)).toMatchObject({
          size: 2048,
          contentType: "image/png",
          etag: md5Etag(body),
        });
      });

      it("refuses a different Content-Type", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(100);
        const res = await h.upload(await presignPut(key, body), body, {
          headers: { "Content-Type": "text/html" },
        });
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(key)).toBeNull();
      });

      it("refuses a tampered signature", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(100);
        const presigned = await presignPut(key, body);
        const res = await h.upload({ ...presigned, url: tamperSignature(presigned.url) }, body);
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(key)).toBeNull();
      });

      it("refuses an expired URL", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(100);
        const presigned = await presignPut(key, body, "image/png", 1);
        await sleep(2100);
        const res = await h.upload(presigned, body);
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(key)).toBeNull();
      });

      it("refuses a body larger than the signed length", async () => {
        const key = `${base()}/original`;
        const presigned = await presignPut(key, randomBytes(100));
        const res = await h.upload(presigned, randomBytes(101));
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(key)).toBeNull();
      });

      it.runIf(caps.noOverwriteOnPresignedPut)("refuses a second PUT to the same key", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(100);
        expect((await h.upload(await presignPut(key, body), body)).status).toBe(200);
        const other = randomBytes(100);
        const res = await h.upload(await presignPut(key, other), other);
        expect(res.status).toBe(409);
        expect((await h.store.head(key))?.etag).toBe(md5Etag(body));
      });
    });

    describe("presigned POST", () => {
      const presignPost = (key: string, maxBytes: number) =>
        h.store.presignPost({ key, contentType: "image/jpeg", maxBytes, minBytes: 1, expiresInSeconds: 300 });

      it("uploads a form with the fields before the file", async () => {
        const key = `${base()}/original`;
        const body = randomBytes(5000);
        const presigned = await presignPost(key, 10_000);
        expect(presigned.method).toBe("POST");
        const res = await h.upload(presigned, body);
        expect(res.status).toBeGreaterThanOrEqual(200);
        expect(res.status).toBeLessThan(300);
        expect(await h.store.head(key)).toMatchObject({
          size: 5000,
          contentType: "image/jpeg",
          etag: md5Etag(body),
        });
      });

      it("refuses a file over maxBytes", async () => {
        const key = `${base()}/original`;
        const res = await h.upload(await presignPost(key, 1000), randomBytes(1001));
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(key)).toBeNull();
      });

      it("refuses a form whose key differs from the policy's", async () => {
        const b = base();
        const presigned = await presignPost(`${b}/original`, 1000);
        const res = await h.upload(
          { ...presigned, fields: { ...presigned.fields, key: `${b}/other` } },
          randomBytes(10),
        );
        expect(isRefused(res.status)).toBe(true);
        expect(await h.store.head(`${b}/other`)).toBeNull();
        expect(await h.store.head(`${b}/original`)).toBeNull();
      });
    });

    describe("multipart", () => {
      const uploadPart = async (key: string, uploadId: string, partNumber: number, body: Buffer) => {
        const url = await h.store.presignUploadPart({
          key,
          uploadId,
          partNumber,
          contentLength: body.length,
          expiresInSeconds: 300,
        });
        const res = await h.upload(
          { method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() },
          body,
        );
        expect(res.status).toBe(200);
        expect(res.headers.etag).toBe(md5Etag(body));
        return res.headers.etag as string;
      };

      it("a part URL stores exactly the size it was signed for, never more or less", async () => {
        const key = `${base()}/original`;
        const { uploadId } = await h.store.createMultipartUpload(key, "video/mp4");
        const url = await h.store.presignUploadPart({
          key,
          uploadId,
          partNumber: 1,
          contentLength: 1000,
          expiresInSeconds: 300,
        });
        const put = (body: Buffer) =>
          h.upload({ method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() }, body);
        // The storage refuses (local: 400 Content-Length mismatch; S3: 403 signature mismatch).
        expect((await put(randomBytes(60_000))).status).toBeGreaterThanOrEqual(400);
        expect((await put(randomBytes(999))).status).toBeGreaterThanOrEqual(400);
        expect(await h.store.listParts(key, uploadId)).toEqual([]);
        expect((await put(randomBytes(1000))).status).toBe(200);
        await h.store.abortMultipartUpload(key, uploadId);
      });

      it("uploads parts, lists them, replaces one, and completes into the concatenation", async () => {
        const key = `${base()}/original`;
        const { uploadId } = await h.store.createMultipartUpload(key, "video/mp4");
        const part1 = randomBytes(5 * MiB);
        const part2 = randomBytes(1000);
        const etag1 = await uploadPart(key, uploadId, 1, part1);
        const etag2 = await uploadPart(key, uploadId, 2, part2);
        expect(await h.store.listParts(key, uploadId)).toMatchObject([
          { partNumber: 1, etag: etag1, size: 5 * MiB },
          { partNumber: 2, etag: etag2, size: 1000 },
        ]);

        const part2b = randomBytes(2000);
        const etag2b = await uploadPart(key, uploadId, 2, part2b);
        expect((await h.store.listParts(key, uploadId))[1]).toMatchObject({
          partNumber: 2,
          etag: etag2b,
          size: 2000,
        });

        const head = await h.store.completeMultipartUpload(key, uploadId, [
          { partNumber: 1, etag: etag1 },
          { partNumber: 2, etag: etag2b },
        ]);
        expect(head).toMatchObject({ key, size: 5 * MiB + 2000 });
        const got = await h.store.getStream(key);
        expect(got?.head).toMatchObject({ size: 5 * MiB + 2000, contentType: "video/mp4" });
        expect((await readAll(got?.body as Readable)).equals(Buffer.concat([part1, part2b]))).toBe(true);
      });

      it("refuses to complete with an ETag that does not match, and keeps the upload", async () => {
        const key = `${base()}/original`;
        const { uploadId } = await h.store.createMultipartUpload(key, "video/mp4");
        await uploadPart(key, uploadId, 1, randomBytes(100));
        const bad = [{ partNumber: 1, etag: `"${"0".repeat(32)}"` }];
        await expect(h.store.completeMultipartUpload(key, uploadId, bad)).rejects.toMatchObject({
          code: "invalid_part",
        });
        expect(await h.store.head(key)).toBeNull();
        expect(await h.store.listParts(key, uploadId)).toHaveLength(1);
        await h.store.abortMultipartUpload(key, uploadId);
      });

      it("refuses to complete when a part other than the last is under 5 MiB", async () => {
        const key = `${base()}/original`;
        const { uploadId } = await h.store.createMultipartUpload(key, "video/mp4");
        const e1 = await uploadPart(key, uploadId, 1, randomBytes(100));
        const e2 = await uploadPart(key, uploadId, 2, randomBytes(100));
        const parts = [
          { partNumber: 1, etag: e1 },
          { partNumber: 2, etag: e2 },
        ];
        await expect(h.store.completeMultipartUpload(key, uploadId, parts)).rejects.toMatchObject({
          code: "entity_too_small",
        });
        await h.store.abortMultipartUpload(key, uploadId);
      });

      it("aborts an upload: its parts are gone and nothing is created", async () => {
        const key = `${base()}/original`;
        const { uploadId } = await h.store.createMultipartUpload(key, "video/mp4");
        await uploadPart(key, uploadId, 1, randomBytes(100));
        await h.store.abortMultipartUpload(key, uploadId);
        await expect(h.store.listParts(key, uploadId)).rejects.toMatchObject({ code: "no_such_upload" });
        expect(await h.store.head(key)).toBeNull();
      });
    });
  });
}
