import { request } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originalKey } from "../../src/domain/keys.ts";
import { Api, type ImageJson, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually } from "../support/harness.ts";
import {
  type FormPart,
  formBody,
  type ProxyRun,
  proxyBytesRead,
  proxyPost,
  proxyRows,
  proxyTargets,
  storageKeys,
} from "../support/proxy-upload.ts";
import { repeated, streamUpload } from "../support/streaming-upload.ts";

const LIMIT = 8 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
const BOUNDARY = "----imgup-proxy-test-boundary";

/** The proxy upload's behaviour through the real HTTP API, on each database, KV and storage. */
describe.each(proxyTargets())("proxy upload (POST /v1/images) on $name", (target) => {
  let run: ProxyRun;
  let alice: Api;

  beforeAll(async () => {
    run = await target.start({ IMGUP_MAX_UPLOAD_BYTES: String(LIMIT), IMGUP_RATE_LIMIT_BURST: "500" });
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  const streamed = (headers: Record<string, string>, chunks: Iterable<Buffer>, query = "") =>
    streamUpload(`${run.baseUrl}/v1/images${query}`, {
      headers: { authorization: `Bearer ${run.alice}`, ...headers },
      chunks,
    });

  /** Refusals leave nothing: no object, no multipart upload, no row in the owner's view. */
  async function expectNothingLeft(keysBefore: string[], imagesBefore: number) {
    expect(await storageKeys(run)).toEqual(keysBefore);
    expect(await run.openMultipartUploads()).toBe(0);
    expect(await imageCount()).toBe(imagesBefore);
    expect((await proxyRows(run, "alice")).pending ?? 0).toBe(0);
  }
  const imageCount = async () => {
    const r = await alice.request<{ items: unknown[] }>("GET", "/v1/images?limit=100");
    return r.body.items.length;
  };

  it("a raw upload with Content-Length becomes ready with the right hash, size and dimensions", async () => {
    const bytes = await makeImage("jpeg", 120, 80);
    const r = await proxyPost(run, bytes, {
      headers: { "content-type": "image/jpeg" },
      query: "?filename=cat.jpg",
    });
    expect(r.status).toBe(201);
    expect(r.headers.get("location")).toBe(`/v1/images/${r.body.image.id}`);
    expect(r.headers.get("ratelimit-limit")).toBe("500");
    // Queued for processing (a worker may have started, or with a small image, finished).
    expect(["pending", "processing", "ready"]).toContain(r.body.image.status);
    expect(r.body.image.filename).toBe("cat.jpg");
    const image = await alice.settled(r.body.image.id);
    expect(image).toMatchObject({
      status: "ready",
      width: 120,
      height: 80,
      format: "jpeg",
      contentType: "image/jpeg",
      size: bytes.length,
      sha256: sha256(bytes),
      visibility: "public",
    });
    expect(await storageKeys(run)).toContain(originalKey(image.id));
  });

  it("a chunked octet-stream body becomes ready: the bytes decide the type, X-Filename names it", async () => {
    const bytes = await makeImage("png", 90, 60);
    const chunks = [bytes.subarray(0, 10), bytes.subarray(10, 700), bytes.subarray(700)];
    const r = await streamed(
      { "content-type": "application/octet-stream", "x-filename": encodeURIComponent("Ünï shot.png") },
      chunks,
    );
    expect(r.status).toBe(201);
    const id = (r.body.image as ImageJson).id;
    expect((r.body.image as ImageJson).filename).toBe("Ünï shot.png");
    expect(await alice.settled(id)).toMatchObject({
      status: "ready",
      contentType: "image/png",
      width: 90,
      size: bytes.length,
      sha256: sha256(bytes),
    });
  });

  it("a multipart/form-data upload with its fields before the file becomes ready", async () => {
    const bytes = await makeImage("webp", 64, 40);
    const form = new FormData();
    form.append("visibility", "private");
    form.append("sha256", sha256(bytes));
    form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/webp" }), "form.webp");
    const r = await proxyPost(run, form);
    expect(r.status).toBe(201);
    expect(r.body.image).toMatchObject({ visibility: "private", filename: "form.webp" });
    expect(await alice.settled(r.body.image.id)).toMatchObject({
      status: "ready",
      format: "webp",
      width: 64,
      size: bytes.length,
      sha256: sha256(bytes),
    });
  });

  it("refuses malformed forms with 400 and keeps nothing", async () => {
    const image = await makeImage("jpeg", 20, 20);
    const file = (name = "file"): FormPart => ({
      name,
      filename: "a.jpg",
      type: "image/jpeg",
      body: [image],
    });
    const cases: Array<[string, FormPart[]]> = [
      ["a second file part", [file(), file()]],
      ["no file part", [{ name: "visibility", value: "public" }]],
      ["a field after the file", [file(), { name: "visibility", value: "private" }]],
      ["an unknown field", [{ name: "colour", value: "red" }, file()]],
      ["a file under another name", [file("image")]],
      ["a bad visibility", [{ name: "visibility", value: "secret" }, file()]],
    ];
    const keys = await storageKeys(run);
    const count = await imageCount();
    for (const [what, parts] of cases) {
      const r = await streamed({ "content-type": `multipart/form-data; boundary=${BOUNDARY}` }, [
        ...formBody(BOUNDARY, parts),
      ]);
      expect(r.status, what).toBe(400);
      expect(r.body.code, what).toBe("validation_failed");
    }
    // A refused form's file may have reached the storage (and a worker) before its tail was read.
    await eventually(async () => (await storageKeys(run)).length === keys.length, 15_000);
    await expectNothingLeft(keys, count);
  });

  it("refuses a declared SHA-256 the body does not match (422 hash_mismatch) before storing it", async () => {
    const bytes = await makeImage("jpeg", 30, 30);
    const wrong = sha256(Buffer.from("something else"));
    const keys = await storageKeys(run);
    const count = await imageCount();
    const raw = await proxyPost(run, bytes, {
      headers: { "content-type": "image/jpeg", "x-content-sha256": wrong },
    });
    expect(raw.status).toBe(422);
    expect(raw.body.code).toBe("hash_mismatch");
    const chunked = await streamed({ "content-type": `multipart/form-data; boundary=${BOUNDARY}` }, [
      ...formBody(BOUNDARY, [
        { name: "sha256", value: wrong },
        { name: "file", filename: "x.jpg", type: "image/jpeg", body: [bytes] },
      ]),
    ]);
    expect(chunked.status).toBe(422);
    expect(chunked.body.code).toBe("hash_mismatch");
    await expectNothingLeft(keys, count);
    const right = await proxyPost(run, bytes, {
      headers: { "content-type": "image/jpeg" },
      query: `?sha256=${sha256(bytes)}`,
    });
    expect(right.status).toBe(201);
  });

  it("refuses what a direct upload refuses: wrong types at once, bytes that lie in the worker", async () => {
    const jpeg = await makeImage("jpeg", 24, 24);
    const text = await proxyPost(run, Buffer.from("hello"), { headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(text.body.code).toBe("unsupported_media_type");
    const svg = await proxyPost(run, Buffer.from("<svg/>"), { headers: { "content-type": "image/svg+xml" } });
    expect(svg.status).toBe(415);
    const untypedText = await proxyPost(run, Buffer.from("just text, not an image"), {
      headers: { "content-type": "application/octet-stream" },
    });
    expect(untypedText.status).toBe(415);

    const notImage = await proxyPost(run, Buffer.from("this is not a png at all".repeat(10)), {
      headers: { "content-type": "image/png" },
    });
    expect(notImage.status).toBe(201);
    expect(await alice.settled(notImage.body.image.id)).toMatchObject({
      status: "rejected",
      rejectReason: "not_an_image",
    });
    const lying = await proxyPost(run, jpeg, { headers: { "content-type": "image/png" } });
    expect(lying.status).toBe(201);
    expect(await alice.settled(lying.body.image.id)).toMatchObject({
      status: "rejected",
      rejectReason: "type_mismatch",
    });
    await eventually(async () => !(await storageKeys(run)).includes(originalKey(lying.body.image.id)));
  });

  it("refuses a missing or empty body with 400; ignores an unknown query parameter", async () => {
    const none = await proxyPost(run, undefined);
    expect(none.status).toBe(400);
    expect(none.body.code).toBe("validation_failed");
    const empty = await proxyPost(run, Buffer.alloc(0), { headers: { "content-type": "image/png" } });
    expect(empty.status).toBe(400);
    const emptyChunked = await streamed({ "content-type": "image/png" }, []);
    expect(emptyChunked.status).toBe(400);
    // Unknown query parameters (cache-busters, tracking) are ignored on every route.
    const unknown = await proxyPost(run, await makeImage("png"), {
      headers: { "content-type": "image/png" },
      query: "?size=12",
    });
    expect(unknown.status).toBe(201);
    // Settled before the next test counts what the storage holds (processing adds the thumb).
    await alice.settled(unknown.body.image.id);
    const anonymous = await fetch(`${run.baseUrl}/v1/images`, { method: "POST", body: "x" });
    expect(anonymous.status).toBe(401);
  });

  it("answers 413 to a declared Content-Length over the limit without reading the body", async () => {
    const before = await proxyBytesRead(run);
    const r = await streamed(
      { "content-type": "image/jpeg", "content-length": String(LIMIT + 1) },
      repeated(CHUNK, LIMIT + 1),
    );
    expect(r.status).toBe(413);
    expect(r.body.code).toBe("payload_too_large");
    expect(r.headers.connection).toBe("close");
    expect(await proxyBytesRead(run)).toBe(before);
    expect(r.completed).toBe(false);
  });

  it.each(["raw", "form"] as const)(
    "cuts a %s body of unknown length off with 413 at the limit and removes what was written",
    async (kind) => {
      const keys = await storageKeys(run);
      const count = await imageCount();
      const before = await proxyBytesRead(run);
      const total = 4 * LIMIT;
      const body =
        kind === "raw"
          ? repeated(CHUNK, total)
          : formBody(BOUNDARY, [
              { name: "file", filename: "big.jpg", type: "image/jpeg", body: repeated(CHUNK, total) },
            ]);
      const type = kind === "raw" ? "image/jpeg" : `multipart/form-data; boundary=${BOUNDARY}`;
      const r = await streamed({ "content-type": type }, body);
      expect(r.status).toBe(413);
      expect(r.body.code).toBe("payload_too_large");
      expect(r.headers.connection).toBe("close");
      const read = (await proxyBytesRead(run)) - before;
      expect(read).toBeGreaterThan(LIMIT);
      expect(read).toBeLessThanOrEqual(LIMIT + 256 * 1024);
      expect(r.bytesWritten).toBeLessThan(total / 2);
      await expectNothingLeft(keys, count);
      expect((await proxyRows(run, "alice")).deleted).toBeGreaterThan(0);
    },
  );

  it("closes a cut-off connection gently: bytes still in flight after the 413 do not reset it", async () => {
    // A raw client that writes twice the limit without looking at the answer (a client busy
    // sending): the server answers, half-closes and discards the rest, so no write fails and the
    // client reads the 413 and then the server's FIN.
    const { port } = new URL(run.baseUrl);
    const socket = connect(Number(port), "127.0.0.1");
    const errors: string[] = [];
    const received: Buffer[] = [];
    socket.on("error", (err) => errors.push(err.message));
    socket.on("data", (d: Buffer) => received.push(d));
    const serverClosed = new Promise<boolean>((resolve) => {
      socket.once("end", () => resolve(true));
      socket.once("close", () => resolve(false));
    });
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const write = async (data: Buffer | string) => {
      if (!socket.destroyed && !socket.write(data)) {
        await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), closed]);
      }
    };
    await write(
      `POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${run.alice}\r\n` +
        "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for (const chunk of repeated(CHUNK, 2 * LIMIT)) {
      if (socket.destroyed) break;
      await write(`${chunk.length.toString(16)}\r\n`);
      await write(chunk);
      await write("\r\n");
    }
    expect(await serverClosed).toBe(true);
    expect(errors).toEqual([]);
    expect(Buffer.concat(received).toString()).toMatch(/^HTTP\/1\.1 413 /);
    socket.destroy();
  });

  it("removes the partial object and the row when the client goes away mid-body", async () => {
    const keys = await storageKeys(run);
    const count = await imageCount();
    const deleted = (await proxyRows(run, "alice")).deleted ?? 0;
    const req = request(`${run.baseUrl}/v1/images`, {
      method: "POST",
      headers: { authorization: `Bearer ${run.alice}`, "content-type": "image/jpeg" },
    });
    req.on("error", () => undefined);
    const before = await proxyBytesRead(run);
    // 6 MiB, all read by the server before the client vanishes: on S3 a part is written by then.
    for (let i = 0; i < 6 * 16; i++) req.write(CHUNK);
    await eventually(async () => (await proxyBytesRead(run)) - before === 6 * 1024 * 1024);
    expect((await proxyRows(run, "alice")).pending).toBe(1);
    req.destroy();
    await eventually(async () => ((await proxyRows(run, "alice")).deleted ?? 0) === deleted + 1);
    await expectNothingLeft(keys, count);
  });
});
