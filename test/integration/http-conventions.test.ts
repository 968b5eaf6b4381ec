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
