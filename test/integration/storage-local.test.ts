import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { type IncomingMessage, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { LocalObjectStore, type LocalObjectStoreOptions } from "../../src/storage/local.ts";
import type { ObjectCreatedEvent } from "../../src/storage/object-store.ts";
import { eventually } from "../support/harness.ts";
import { type LocalStorageServer, startLocalStorageServer } from "../support/local-storage-server.ts";
import { runObjectStoreContract } from "../support/object-store-contract.ts";
import { httpUpload } from "../support/presigned-upload.ts";

const MiB = 1024 * 1024;

interface LocalHarness {
  root: string;
  store: LocalObjectStore;
  server: LocalStorageServer;
  events: ObjectCreatedEvent[];
  cleanup: () => Promise<void>;
}

async function makeLocal(overrides: Partial<LocalObjectStoreOptions> = {}): Promise<LocalHarness> {
  const root = await mkdtemp(join(tmpdir(), "imgup-storage-"));
  const server = await startLocalStorageServer();
  const events: ObjectCreatedEvent[] = [];
  const store = new LocalObjectStore({
    root,
    publicBaseUrl: server.baseUrl,
    secret: "test-secret",
    maxObjectBytes: 20 * MiB,
    onObjectCreated: async (event) => {
      events.push(event);
    },
    ...overrides,
  });
  server.attach(store);
  const cleanup = async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  };
  return { root, store, server, events, cleanup };
}

runObjectStoreContract(
  "local",
  async () => {
    const local = await makeLocal();
    return { store: local.store, upload: httpUpload, cleanup: local.cleanup };
  },
  { capabilities: { noOverwriteOnPresignedPut: true } },
);

describe("local driver", () => {
  let local: LocalHarness;
  afterEach(async () => {
    await local?.cleanup();
  });

  const lastCode = () => local.server.results.at(-1)?.code;
  const tmpFiles = () => readdir(join(local.root, "tmp"));
  const put = (key: string, body: Buffer, contentType = "image/png") =>
    local.store.presignPut({ key, contentType, contentLength: body.length, expiresInSeconds: 60 });

  it("announces each successful upload exactly once and never a refused one", async () => {
    local = await makeLocal();
    const { store, events } = local;
    const body = randomBytes(500);

    expect((await httpUpload(await put("p/put", body), body)).status).toBe(200);
    expect((await httpUpload(await put("p/put", body), body)).status).toBe(409);
    const wrongType = { headers: { "Content-Type": "image/gif" } };
    expect((await httpUpload(await put("p/refused", body), body, wrongType)).status).toBe(403);

    const post = (key: string, maxBytes: number) =>
      store.presignPost({ key, contentType: "image/png", maxBytes, expiresInSeconds: 60 });
    expect((await httpUpload(await post("p/post", 1000), body)).status).toBe(204);
    expect((await httpUpload(await post("p/post-big", 100), body)).status).toBe(400);

    await store.put("p/server", body, { contentType: "image/png" });

    const { uploadId } = await store.createMultipartUpload("p/multi", "image/png");
    const url = await store.presignUploadPart({
      key: "p/multi",
      uploadId,
      partNumber: 1,
      contentLength: body.length,
      expiresInSeconds: 60,
    });
    const part = await httpUpload(
      { method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() },
      body,
    );
    await store.completeMultipartUpload("p/multi", uploadId, [
      { partNumber: 1, etag: part.headers.etag ?? "" },
    ]);

    const etag = `"${createHash("md5").update(body).digest("hex")}"`;
    expect(events).toEqual([
      { key: "p/put", size: 500, etag, source: "local" },
      { key: "p/post", size: 500, etag, source: "local" },
      { key: "p/server", size: 500, etag, source: "local" },
      { key: "p/multi", size: 500, etag: expect.stringMatching(/^"[0-9a-f]{32}-1"$/), source: "local" },
    ]);
  });

  it("keeps the object but fails the upload when the listener fails", async () => {
    local = await makeLocal({
      onObjectCreated: async () => {
        throw new Error("queue down");
      },
    });
    const body = randomBytes(10);
    expect((await httpUpload(await put("p/a", body), body)).status).toBe(500);
    expect(await local.store.head("p/a")).toMatchObject({ size: 10 });
  });

  it("stores a checksum-signed upload with its verified sha256, and refuses a wrong body", async () => {
    local = await makeLocal();
    const good = randomBytes(1000);
    const sha256 = createHash("sha256").update(good).digest("hex");
    const presign = (key: string) =>
      local.store.presignPut({
        key,
        contentType: "image/png",
        contentLength: 1000,
        sha256,
        expiresInSeconds: 60,
      });

    const wrong = await presign("p/wrong");
    expect(wrong.headers["x-amz-checksum-sha256"]).toBe(Buffer.from(sha256, "hex").toString("base64"));
    expect((await httpUpload(wrong, randomBytes(1000))).status).toBe(400);
    expect(lastCode()).toBe("checksum_mismatch");
    expect(await local.store.head("p/wrong")).toBeNull();
    expect(await tmpFiles()).toEqual([]);
    expect(local.events).toEqual([]);

    const otherHeader = { headers: { "x-amz-checksum-sha256": Buffer.alloc(32).toString("base64") } };
    expect((await httpUpload(await presign("p/header"), good, otherHeader)).status).toBe(400);
    expect(lastCode()).toBe("checksum_mismatch");

    expect((await httpUpload(await presign("p/good"), good)).status).toBe(200);
    expect(await local.store.head("p/good")).toMatchObject({ size: 1000, sha256 });
  });

  /** Sends the start of a request announcing more bytes than it sends, then drops the connection. */
  async function abortMidBody(url: string, method: string, headers: Record<string, string>, start: Buffer) {
    const before = local.server.started();
    const req = request(url, { method, headers });
    req.on("error", () => {});
    req.write(start);
    // Drop it once the server is handling it (mid-body), however long a loaded machine takes.
    await eventually(async () => local.server.started() > before);
    req.destroy();
    await local.server.waitForResults(1);
  }

  it("leaves no object and no temp file when the client aborts a PUT mid-body", async () => {
    local = await makeLocal();
    const presigned = await put("p/aborted", randomBytes(100_000));
    await abortMidBody(
      presigned.url,
      "PUT",
      { ...presigned.headers, "Content-Length": "100000" },
      randomBytes(10_000),
    );
    expect(lastCode()).toBe("incomplete_body");
    expect(await local.store.head("p/aborted")).toBeNull();
    expect(await tmpFiles()).toEqual([]);
    expect(local.events).toEqual([]);
  });

  it("leaves no object and no temp file when the client aborts a form upload mid-file", async () => {
    local = await makeLocal();
    const presigned = await local.store.presignPost({
      key: "p/form",
      contentType: "image/png",
      maxBytes: 1_000_000,
      expiresInSeconds: 60,
    });
    const boundary = "imgup-test-boundary";
    const part = (disposition: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; ${disposition}\r\n`;
    let start = "";
    for (const [name, value] of Object.entries(presigned.fields))
      start += `${part(`name="${name}"`)}\r\n${value}\r\n`;
    start += `${part('name="file"; filename="a.png"')}Content-Type: image/png\r\n\r\n`;
    const headers = {
      "Content-Type": `multipart/form-data; boundary=${boundary}`,
      "Content-Length": "1000000",
    };
    await abortMidBody(
      presigned.url,
      "POST",
      headers,
      Buffer.concat([Buffer.from(start), randomBytes(10_000)]),
    );
    expect(lastCode()).toBe("incomplete_body");
    expect(await local.store.head("p/form")).toBeNull();
    expect(await tmpFiles()).toEqual([]);
    expect(local.events).toEqual([]);
  });

  it("answers each kind of refused PUT with its own status and code", async () => {
    let now = Date.now();
    local = await makeLocal({ now: () => now });
    const body = randomBytes(100);
    const refusal = async (res: Promise<{ status: number }>) => ({
      status: (await res).status,
      code: lastCode(),
    });

    const forOther = await put("p/other", body);
    const forgedPath = { ...forOther, url: forOther.url.replace("p/other", "p/t") };
    expect(await refusal(httpUpload(forgedPath, body))).toEqual({ status: 403, code: "signature_mismatch" });
    const longer = httpUpload(await put("p/l", body), randomBytes(101));
    expect(await refusal(longer)).toEqual({ status: 403, code: "content_length_mismatch" });
    const otherType = httpUpload(await put("p/c", body), body, { headers: { "Content-Type": "image/gif" } });
    expect(await refusal(otherType)).toEqual({ status: 403, code: "content_type_mismatch" });

    const chunked = await put("p/chunked", body);
    const req = request(chunked.url, { method: "PUT", headers: chunked.headers });
    // Writing before end makes Node send the body chunked, without Content-Length.
    req.write(body);
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    res.resume();
    expect({ status: res.statusCode, code: lastCode() }).toEqual({ status: 411, code: "length_required" });

    const expiring = await put("p/e", body);
    now += 61_000;
    expect(await refusal(httpUpload(expiring, body))).toEqual({ status: 403, code: "url_expired" });
    expect(await readdir(join(local.root, "objects"))).toEqual([]);
  });

  it("stops reading a body that runs past its Content-Length", async () => {
    local = await makeLocal();
    const presigned = await put("p/long", randomBytes(100));
    const url = new URL(presigned.url);
    const upload = local.store.handleUpload({
      method: "PUT",
      key: "p/long",
      query: Object.fromEntries(url.searchParams),
      headers: { "content-length": "100", "content-type": "image/png" },
      body: Readable.from([randomBytes(60), randomBytes(60)]),
    });
    await expect(upload).rejects.toMatchObject({ code: "content_length_mismatch" });
    expect(await local.store.head("p/long")).toBeNull();
    expect(await tmpFiles()).toEqual([]);
  });

  it("lets exactly one of two concurrent uploads to the same key win", async () => {
    local = await makeLocal();
    const [a, b] = [randomBytes(200_000), randomBytes(200_000)];
    const results = await Promise.all([
      httpUpload(await put("p/race", a), a),
      httpUpload(await put("p/race", b), b),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(local.events).toHaveLength(1);
    const winner = results[0]?.status === 200 ? a : b;
    const got = await local.store.getStream("p/race");
    const chunks: Buffer[] = [];
    for await (const chunk of got?.body ?? []) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(winner)).toBe(true);
    expect(await tmpFiles()).toEqual([]);
  });

  it("rejects keys that could escape the root or alias another key", async () => {
    local = await makeLocal();
    const bad = ["../x", "a/../x", "./x", "/x", "a//b", "a/", "a\\b", "", "a\nb", "x".repeat(1025)];
    for (const key of bad) {
      await expect(
        local.store.put(key, Buffer.from("x"), { contentType: "text/plain" }),
      ).rejects.toMatchObject({
        code: "validation_failed",
      });
      await expect(put(key, Buffer.from("x"))).rejects.toMatchObject({ code: "validation_failed" });
      await expect(local.store.head(key)).rejects.toMatchObject({ code: "validation_failed" });
    }
    expect(await readdir(local.root)).not.toContain("x");
  });

  it("lists only published objects, not temp files, sidecars or multipart state", async () => {
    local = await makeLocal();
    await local.store.put("a/b/original", Buffer.from("x"), { contentType: "text/plain" });
    const { uploadId } = await local.store.createMultipartUpload("a/c/original", "video/mp4");
    const url = await local.store.presignUploadPart({
      key: "a/c/original",
      uploadId,
      partNumber: 1,
      contentLength: 10,
      expiresInSeconds: 60,
    });
    await httpUpload({ method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() }, randomBytes(10));
    await writeFile(join(local.root, "tmp", "leftover"), "x");
    expect((await local.store.list("")).objects.map((o) => o.key)).toEqual(["a/b/original"]);
    expect(await local.store.deletePrefix("")).toBe(1);
  });

  it("degrades to what the file says when its sidecar is missing", async () => {
    local = await makeLocal();
    await local.store.put("a/original", Buffer.from("hello"), { contentType: "text/plain" });
    await rm(join(local.root, "meta", "a", "original"));
    expect(await local.store.head("a/original")).toMatchObject({ size: 5, etag: null, contentType: null });
  });

  it("refuses a key that is also a prefix of another key", async () => {
    local = await makeLocal();
    const put = (key: string, ifNoneMatch: boolean) =>
      local.store.put(key, Buffer.from("x"), { contentType: "text/plain", ifNoneMatch });
    await put("a/b", false);
    for (const ifNoneMatch of [false, true]) {
      await expect(put("a", ifNoneMatch)).rejects.toMatchObject({ code: "conflict" });
      await expect(put("a/b/c", ifNoneMatch)).rejects.toMatchObject({ code: "conflict" });
    }
    expect(await tmpFiles()).toEqual([]);
    expect(await local.store.head("a/b")).toMatchObject({ size: 1 });
  });

  it("refuses multipart parts out of order and unknown uploads", async () => {
    local = await makeLocal();
    const { store } = local;
    const { uploadId } = await store.createMultipartUpload("m/original", "video/mp4");
    const parts = [
      { partNumber: 2, etag: "x" },
      { partNumber: 1, etag: "y" },
    ];
    await expect(store.completeMultipartUpload("m/original", uploadId, parts)).rejects.toMatchObject({
      code: "invalid_part_order",
    });
    await expect(store.abortMultipartUpload("m/other", uploadId)).rejects.toMatchObject({
      code: "no_such_upload",
    });
    await expect(store.abortMultipartUpload("m/original", "f".repeat(32))).rejects.toMatchObject({
      code: "no_such_upload",
    });
    await store.abortMultipartUpload("m/original", uploadId);
    const url = await store.presignUploadPart({
      key: "m/original",
      uploadId,
      partNumber: 1,
      contentLength: 5,
      expiresInSeconds: 60,
    });
    expect(
      (
        await httpUpload(
          { method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() },
          randomBytes(5),
        )
      ).status,
    ).toBe(404);
    expect(lastCode()).toBe("no_such_upload");
  });
});

describe("local driver file permissions", () => {
  let local: LocalHarness;
  afterEach(async () => local?.cleanup());

  it("keeps every object, sidecar and directory to the service's own user (0600 / 0700), whatever the umask", async () => {
    const previous = process.umask(0o022);
    try {
      local = await makeLocal();
      const { store } = local;
      const body = randomBytes(300);
      const put = await store.presignPut({
        key: "q/put/original",
        contentType: "image/png",
        contentLength: 300,
        expiresInSeconds: 60,
      });
      expect((await httpUpload(put, body)).status).toBe(200);
      await store.put("q/server/original", body, { contentType: "image/png" });
      const { uploadId } = await store.createMultipartUpload("q/multi/original", "image/png");
      const url = await store.presignUploadPart({
        key: "q/multi/original",
        uploadId,
        partNumber: 1,
        contentLength: body.length,
        expiresInSeconds: 60,
      });
      const part = await httpUpload(
        { method: "PUT", url, headers: {}, fields: {}, expiresAt: new Date() },
        body,
      );
      expect(part.status).toBe(200);
      const entries = await readdir(local.root, { recursive: true, withFileTypes: true });
      expect(entries.length).toBeGreaterThan(6);
      for (const entry of entries) {
        const full = join(entry.parentPath, entry.name);
        const mode = (await stat(full)).mode & 0o777;
        expect(mode, full).toBe(entry.isDirectory() ? 0o700 : 0o600);
      }
    } finally {
      process.umask(previous);
    }
  });
});
