import { request as httpRequest } from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

describe("HTTP conventions: methods", () => {
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    run = await startImgup(db.make(), { IMGUP_CORS_ORIGINS: "http://app.test" });
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  it("answers a known path asked with another method 405 with Allow, an unknown path 404", async () => {
    const put = await alice.request("PUT", "/v1/images");
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(put.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(put.body).toMatchObject({ status: 405, code: "method_not_allowed" });

    const item = await alice.request("POST", "/v1/images/img_00000000000000000000000000");
    expect(item.status).toBe(405);
    expect(item.headers.get("allow")).toBe("GET, HEAD, PATCH, DELETE, OPTIONS");

    const storage = await fetch(`${run.baseUrl}/storage/some/key`, { method: "GET" });
    expect(storage.status).toBe(405);
    expect(storage.headers.get("allow")).toBe("PUT, OPTIONS");

    const delivery = await fetch(`${run.baseUrl}/i/img_00000000000000000000000000/thumb`, {
      method: "DELETE",
    });
    expect(delivery.status).toBe(405);
    expect(delivery.headers.get("allow")).toBe("GET, HEAD, OPTIONS");

    expect((await alice.request("GET", "/v1/nonesuch")).status).toBe(404);
    expect((await alice.request("DELETE", "/nonesuch/at/all")).status).toBe(404);
  });

  it("answers a plain OPTIONS with Allow, and a CORS preflight as a preflight", async () => {
    const plain = await fetch(`${run.baseUrl}/v1/images`, { method: "OPTIONS" });
    expect(plain.status).toBe(204);
    expect(plain.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    const preflight = await fetch(`${run.baseUrl}/v1/images`, {
      method: "OPTIONS",
      headers: { origin: "http://app.test", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.test");
    expect((await fetch(`${run.baseUrl}/nonesuch`, { method: "OPTIONS" })).status).toBe(404);
  });
});

describe("HTTP conventions: Range on originals (local storage)", () => {
  let run: Running;
  let image: ImageJson;
  let whole: Buffer;
  let etag: string;

  beforeAll(async () => {
    run = await startImgup(db.make());
    const alice = new Api(run.baseUrl, run.alice);
    const { intent } = await alice.uploadBytes(await makeImage("png", 90, 70), {
      filename: "r.png",
      contentType: "image/png",
    });
    image = await alice.settled(intent.image.id);
    const res = await fetch(image.urls?.original ?? "");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    whole = Buffer.from(await res.arrayBuffer());
    etag = res.headers.get("etag") ?? "";
  });
  afterAll(async () => run?.stop());

  const get = async (headers: Record<string, string>) => {
    const res = await fetch(image.urls?.original ?? "", { headers });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  };

  it("answers one byte range 206 with Content-Range, and the suffix and open-ended forms", async () => {
    expect(whole.length).toBeGreaterThan(20);
    const size = whole.length;
    const first = await get({ range: "bytes=0-9" });
    expect(first.res.status).toBe(206);
    expect(first.res.headers.get("content-range")).toBe(`bytes 0-9/${size}`);
    expect(first.res.headers.get("content-length")).toBe("10");
    expect(first.body.equals(whole.subarray(0, 10))).toBe(true);
    expect(first.res.headers.get("etag")).toBe(etag);

    const tail = await get({ range: "bytes=-5" });
    expect(tail.res.status).toBe(206);
    expect(tail.res.headers.get("content-range")).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
    expect(tail.body.equals(whole.subarray(size - 5))).toBe(true);

    const rest = await get({ range: "bytes=7-" });
    expect(rest.res.status).toBe(206);
    expect(rest.body.equals(whole.subarray(7))).toBe(true);
    // A last byte past the end is cut to the end.
    const past = await get({ range: `bytes=3-${size + 100}` });
    expect(past.res.headers.get("content-range")).toBe(`bytes 3-${size - 1}/${size}`);
    expect(past.body.equals(whole.subarray(3))).toBe(true);
  });

  it("answers a range past the end 416 with Content-Range: bytes */size", async () => {
    const { res, body } = await get({ range: `bytes=${whole.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe(`bytes */${whole.length}`);
    expect(JSON.parse(body.toString())).toMatchObject({ code: "range_not_satisfiable" });
  });

  it("sends it whole when If-Range names another version, several ranges are asked, or the header is malformed", async () => {
    const wholes: Record<string, string>[] = [
      { range: "bytes=0-9", "if-range": '"someone-else"' },
      { range: "bytes=0-9", "if-range": "Thu, 01 Jan 1970 00:00:00 GMT" },
      { range: "bytes=0-1,4-5" },
      { range: "pages=1" },
      { range: "bytes=9-3" },
    ];
    for (const headers of wholes) {
      const { res, body } = await get(headers);
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(body.equals(whole)).toBe(true);
    }
    const current = await get({ range: "bytes=0-9", "if-range": etag });
    expect(current.res.status).toBe(206);
  });
});

/** A GET whose body is read as sent: fetch would decode Content-Encoding behind the test's back. */
function rawGet(url: string, headers: Record<string, string>) {
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
  }>((resolve, reject) => {
    httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    })
      .on("error", reject)
      .end();
  });
}

describe("HTTP conventions: compression", () => {
  let run: Running;
  let image: ImageJson;

  beforeAll(async () => {
    run = await startImgup(db.make());
    const alice = new Api(run.baseUrl, run.alice);
    for (let i = 0; i < 6; i++) {
      const { intent } = await alice.uploadBytes(await makeImage("png", 40 + i, 30), {
        filename: `z${i}.png`,
        contentType: "image/png",
      });
      image = await alice.settled(intent.image.id);
    }
  });
  afterAll(async () => run?.stop());

  it("compresses JSON with br or gzip as asked, and says Vary: Accept-Encoding", async () => {
    const auth = { authorization: `Bearer ${run.alice}` };
    // Ids only: signed URLs in the list differ from one answer to the next.
    const ids = (text: string) => (JSON.parse(text) as { items: { id: string }[] }).items.map((i) => i.id);
    const plain = await rawGet(`${run.baseUrl}/v1/images`, auth);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(1024);
    const br = await rawGet(`${run.baseUrl}/v1/images`, { ...auth, "accept-encoding": "br" });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(String(br.headers.vary)).toMatch(/accept-encoding/i);
    expect(br.body.length).toBeLessThan(plain.body.length);
    expect(ids(brotliDecompressSync(br.body).toString())).toEqual(ids(plain.body.toString()));
    const gz = await rawGet(`${run.baseUrl}/v1/images`, { ...auth, "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(ids(gunzipSync(gz.body).toString())).toEqual(ids(plain.body.toString()));
  });

  it("never compresses images, originals or ranges, which keep Content-Length", async () => {
    const enc = { "accept-encoding": "br, gzip" };
    for (const url of [image.urls?.original ?? "", image.urls?.presets.thumb ?? ""]) {
      const res = await rawGet(url, enc);
      expect(res.status).toBe(200);
      expect(res.headers["content-encoding"]).toBeUndefined();
      expect(Number(res.headers["content-length"])).toBe(res.body.length);
    }
    const part = await rawGet(image.urls?.original ?? "", { ...enc, range: "bytes=0-3" });
    expect(part.status).toBe(206);
    expect(part.headers["content-encoding"]).toBeUndefined();
    expect(part.body.length).toBe(4);
  });

  it("does not decompress request bodies: a gzip-encoded JSON body is not silently inflated", async () => {
    const body = Buffer.from(JSON.stringify({ filename: "a.png", contentType: "image/png", size: 10 }));
    const res = await fetch(`${run.baseUrl}/v1/uploads`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${run.alice}`,
        "content-type": "application/json",
        "content-encoding": "gzip",
      },
      body: (await import("node:zlib")).gzipSync(body),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});
