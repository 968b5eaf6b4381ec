import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson, putTo } from "../support/api.ts";
import { launchChromium } from "../support/browser.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

const APP = "http://app.test:5173";
const EVIL = "http://evil.test";

const varyOf = (h: Headers) => (h.get("vary") ?? "").split(",").map((v) => v.trim().toLowerCase());

describe("CORS with named origins", () => {
  let run: Running;
  let alice: Api;
  let image: ImageJson;

  beforeAll(async () => {
    run = await startImgup(db.make(), { IMGUP_CORS_ORIGINS: APP });
    alice = new Api(run.baseUrl, run.alice);
    const { intent } = await alice.uploadBytes(await makeImage("jpeg", 320, 240), {
      filename: "c.jpg",
      contentType: "image/jpeg",
    });
    image = await alice.settled(intent.image.id);
  });
  afterAll(async () => run?.stop());

  const preflight = (path: string, origin: string, method: string, headers: string) =>
    fetch(`${run.baseUrl}${path}`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
    });

  it("answers an API preflight for an allowed origin with the methods and headers the SDK sends", async () => {
    const res = await preflight("/v1/uploads", APP, "POST", "authorization,content-type,idempotency-key");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    const methods = (res.headers.get("access-control-allow-methods") ?? "").split(/,\s*/);
    expect(methods).toEqual(expect.arrayContaining(["GET", "POST", "PATCH", "DELETE"]));
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "content-type", "idempotency-key"]));
    expect(varyOf(res.headers)).toContain("origin");
    // A preflight of a route that needs a key is answered without one.
    const patch = await preflight(`/v1/images/${image.id}`, APP, "PATCH", "authorization,content-type");
    expect(patch.status).toBe(204);
    expect(patch.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("lets the page read the answer and the headers clients read, errors included", async () => {
    const list = await alice.request("GET", "/v1/images", { headers: { origin: APP } });
    expect(list.status).toBe(200);
    expect(list.headers.get("access-control-allow-origin")).toBe(APP);
    const exposed = (list.headers.get("access-control-expose-headers") ?? "").split(/,\s*/);
    for (const h of [
      "ETag",
      "Location",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "Retry-After",
    ]) {
      expect(exposed).toContain(h);
    }
    expect(exposed).toContain("Idempotent-Replayed");
    const anonymous = await new Api(run.baseUrl).request("GET", "/v1/images", { headers: { origin: APP } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("gives a disallowed origin no Access-Control-Allow-Origin and otherwise processes the request", async () => {
    const pre = await preflight("/v1/uploads", EVIL, "POST", "authorization,content-type");
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const list = await alice.request<{ items: unknown[] }>("GET", "/v1/images", {
      headers: { origin: EVIL },
    });
    expect(list.status).toBe(200);
    expect(list.body.items.length).toBeGreaterThan(0);
    expect(list.headers.get("access-control-allow-origin")).toBeNull();
    expect(varyOf(list.headers)).toContain("origin");
  });

  it("answers the embedded storage's preflight with every header an upload URL pins, and exposes ETag", async () => {
    const bytes = await makeImage("png", 64, 64);
    const created = await alice.createIntent({
      filename: "s.png",
      contentType: "image/png",
      size: bytes.length,
      sha256: (await import("../support/api.ts")).sha256(bytes),
    });
    expect(created.status).toBe(201);
    const { upload } = created.body;
    const path = new URL(upload.url).pathname + new URL(upload.url).search;
    const pinned = Object.keys(upload.headers ?? {}).map((h) => h.toLowerCase());
    const asked = [
      ...new Set([...pinned, "content-type", "content-md5", "if-none-match", "x-amz-checksum-sha256"]),
    ];
    const pre = await preflight(path, APP, "PUT", asked.join(","));
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(APP);
    const allowed = (pre.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
    for (const h of asked) expect(allowed).toContain(h);
    expect(pre.headers.get("access-control-allow-methods")).toMatch(/PUT/);

    const put = await putTo(upload, bytes, { origin: APP });
    expect(put.status).toBe(200);
    expect(put.headers.get("access-control-allow-origin")).toBe(APP);
    expect(put.headers.get("access-control-expose-headers")).toMatch(/\bETag\b/);
    const form = await preflight("/storage-post", APP, "POST", "content-type");
    expect(form.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("lets an allowed origin read public delivery, with Vary: Origin on every answer", async () => {
    const thumb = image.urls?.presets.thumb ?? "";
    const allowed = await fetch(thumb, { headers: { origin: APP } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(APP);
    expect(varyOf(allowed.headers)).toContain("origin");
    // A CDN keeps the answer to a request without Origin too: it must not be reused for one with it.
    const plain = await fetch(thumb);
    expect(plain.headers.get("access-control-allow-origin")).toBeNull();
    expect(varyOf(plain.headers)).toContain("origin");
    const other = await fetch(thumb, { headers: { origin: EVIL } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    // Negotiated variants keep Vary: Accept beside it.
    const small = await fetch(`${run.baseUrl}/i/${image.id}/small`, {
      headers: { origin: APP, accept: "image/webp" },
    });
    expect(small.status).toBe(200);
    expect(varyOf(small.headers)).toEqual(expect.arrayContaining(["origin", "accept"]));
    const original = await fetch(image.urls?.original ?? "", { headers: { origin: APP } });
    expect(original.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("builds upload URLs from IMGUP_PUBLIC_URL, never from the request's Host, and allows no loopback alias", async () => {
    const body = JSON.stringify({ filename: "h.png", contentType: "image/png", size: 100 });
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${run.baseUrl}/v1/uploads`, {
        method: "POST",
        headers: {
          host: "evil.test:666",
          authorization: `Bearer ${run.alice}`,
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
        },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
      req.end(body);
    });
    const intent = JSON.parse(answer) as { upload: { url: string } };
    expect(new URL(intent.upload.url).origin).toBe(run.config.publicUrl);
    const alias = `http://localhost:${run.config.port}`;
    const pre = await preflight("/storage/x", alias, "PUT", "content-type");
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("gives no CORS to the demo page, health and metrics", async () => {
    const res = await fetch(`${run.baseUrl}/healthz`, { headers: { origin: APP } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(varyOf(res.headers)).not.toContain("origin");
  });
});

describe("CORS with * (public delivery only)", () => {
  let run: Running;
  let image: ImageJson;

  beforeAll(async () => {
    run = await startImgup(db.make(), { IMGUP_CORS_ORIGINS: "*" });
    const alice = new Api(run.baseUrl, run.alice);
    const { intent } = await alice.uploadBytes(await makeImage("jpeg", 100, 80), {
      filename: "s.jpg",
      contentType: "image/jpeg",
    });
    image = await alice.settled(intent.image.id);
  });
  afterAll(async () => run?.stop());

  it("answers delivery with a fixed * and no Vary: Origin, and the API with nothing", async () => {
    const thumb = await fetch(image.urls?.presets.thumb ?? "", { headers: { origin: EVIL } });
    expect(thumb.headers.get("access-control-allow-origin")).toBe("*");
    expect(varyOf(thumb.headers)).not.toContain("origin");
    const api = await new Api(run.baseUrl, run.alice).request("GET", "/v1/images", {
      headers: { origin: EVIL },
    });
    expect(api.status).toBe(200);
    expect(api.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("sets them on delivery's errors and Range answers too, and still answers a delivery preflight", async () => {
    const missing = await fetch(`${run.baseUrl}/i/00000000-0000-4000-8000-000000000000/thumb`, {
      headers: { origin: EVIL },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("*");
    const original = image.urls?.original ?? "";
    const range = await fetch(original, { headers: { origin: EVIL, range: "bytes=0-9" } });
    expect(range.status).toBe(206);
    expect(range.headers.get("access-control-allow-origin")).toBe("*");
    expect(range.headers.get("access-control-expose-headers")).toMatch(/\bContent-Range\b/);
    const preflight = await fetch(image.urls?.presets.thumb ?? "", {
      method: "OPTIONS",
      headers: {
        origin: EVIL,
        "access-control-request-method": "GET",
        "access-control-request-headers": "range",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toMatch(/\bGET\b/);
  });
});

describe("the demo page at http://127.0.0.1:PORT with the default public URL (http://localhost:PORT)", () => {
  let run: Running;

  beforeAll(async () => {
    // An empty value is unset: the public URL falls back to http://localhost:PORT.
    run = await startImgup(db.make(), { IMGUP_PUBLIC_URL: "" });
  });
  afterAll(async () => run?.stop());

  it("hands out localhost upload URLs, which a page on 127.0.0.1 may upload to cross-origin", async () => {
    expect(run.config.publicUrl).toBe(`http://localhost:${run.config.port}`);
    const page = `http://127.0.0.1:${run.config.port}`;
    const res = await fetch(`${run.baseUrl}/storage/x`, {
      method: "OPTIONS",
      headers: {
        origin: page,
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type",
      },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe(page);
    const stranger = await fetch(`${run.baseUrl}/storage/x`, {
      method: "OPTIONS",
      headers: { origin: "http://127.0.0.1:1", "access-control-request-method": "PUT" },
    });
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("uploads from Chromium on 127.0.0.1 to the localhost upload URL and shows the image", async () => {
    const browser = await launchChromium();
    try {
      const tab = await browser.context.newPage();
      await tab.goto(`http://127.0.0.1:${run.config.port}/healthz`);
      const bytes = [...(await makeImage("jpeg", 120, 90))];
      const outcome = await tab.evaluate(
        async ({ key, bytes }) => {
          const body = new Uint8Array(bytes);
          const created = await fetch("/v1/uploads", {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ filename: "d.jpg", contentType: "image/jpeg", size: body.length }),
          });
          const intent = await created.json();
          const put = await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body });
          return {
            uploadUrl: intent.upload.url as string,
            status: put.status,
            etag: put.headers.get("etag"),
            id: intent.image.id as string,
          };
        },
        { key: run.alice, bytes },
      );
      expect(outcome.uploadUrl).toMatch(new RegExp(`^http://localhost:${run.config.port}/storage/`));
      expect(outcome.status).toBe(200);
      expect(outcome.etag).toMatch(/^"/);
      const ready = await new Api(run.baseUrl, run.alice).settled(outcome.id);
      expect(ready.status).toBe("ready");
    } finally {
      await browser.close();
    }
  });
});

describe("a page on its own origin, in Chromium, with only IMGUP_CORS_ORIGINS set", () => {
  let run: Running;
  let site: Server;
  let siteOrigin: string;

  beforeAll(async () => {
    // The app's own origin: a blank page from another port of 127.0.0.1.
    site = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>app</title>"),
    );
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    run = await startImgup(db.make(), { IMGUP_CORS_ORIGINS: siteOrigin });
  });
  afterAll(async () => {
    await run?.stop();
    await new Promise((resolve) => site?.close(resolve));
  });

  it("calls the API, uploads to the presigned URL and draws the public image into a canvas", async () => {
    const browser = await launchChromium();
    try {
      const tab = await browser.context.newPage();
      await tab.goto(siteOrigin);
      const bytes = [...(await makeImage("jpeg", 120, 90))];
      const put = await tab.evaluate(
        async ({ api, key, bytes }) => {
          const body = new Uint8Array(bytes);
          const created = await fetch(`${api}/v1/uploads`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${key}`,
              "content-type": "application/json",
              "idempotency-key": crypto.randomUUID(),
            },
            body: JSON.stringify({ filename: "x.jpg", contentType: "image/jpeg", size: body.length }),
          });
          const intent = await created.json();
          const res = await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body });
          return {
            status: res.status,
            etag: res.headers.get("etag"),
            id: intent.image.id as string,
            remaining: created.headers.get("ratelimit-remaining"),
          };
        },
        { api: run.baseUrl, key: run.alice, bytes },
      );
      expect(put.status).toBe(200);
      expect(put.etag).toMatch(/^"/);
      expect(put.remaining).toMatch(/^\d+$/);
      const ready = await new Api(run.baseUrl, run.alice).settled(put.id);
      const pixels = await tab.evaluate(async (src) => {
        const img = new Image();
        img.crossOrigin = "anonymous";
        img.src = src;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const ctx = canvas.getContext("2d");
        ctx?.drawImage(img, 0, 0);
        // Throws SecurityError on a tainted canvas, i.e. without Access-Control-Allow-Origin.
        return ctx?.getImageData(0, 0, 1, 1).data.length;
      }, ready.urls?.presets.thumb ?? "");
      expect(pixels).toBe(4);
    } finally {
      await browser.close();
    }
  });
});
