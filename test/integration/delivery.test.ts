import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imagePrefix, variantKey } from "../../src/domain/keys.ts";
import { DEFAULT_PRESETS } from "../../src/domain/presets.ts";
import { canonicalSpec, type TransformSpec } from "../../src/domain/transform-spec.ts";
import { transformUrl } from "../../src/services/transform-urls.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const SIGNING_KEY = "delivery-test-signing-key-0123456789abcdef";

async function transformsCounted(run: Running): Promise<number> {
  const text = await (await fetch(`${run.baseUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("imgup_transforms_total{"))
    .reduce((n, l) => n + Number(l.split(" ")[1]), 0);
}

/** A JPEG shot sideways (EXIF orientation 6) with GPS tags: 80 wide, 40 high as stored. */
async function sidewaysJpegWithGps(): Promise<Buffer> {
  const left = { r: 255, g: 0, b: 0 };
  return sharp({ create: { width: 80, height: 40, channels: 3, background: { r: 0, g: 0, b: 255 } } })
    .composite([
      { input: { create: { width: 20, height: 40, channels: 3, background: left } }, left: 0, top: 0 },
    ])
    .jpeg()
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 0/1" } })
    .toBuffer();
}

describe("delivery of variants", () => {
  let run: Running;
  let alice: Api;
  let image: ImageJson;

  beforeAll(async () => {
    run = await startImgup(db.make(), {
      IMGUP_URL_SIGNING_KEYS: SIGNING_KEY,
      IMGUP_TRANSFORM_MISSES_BURST: "10000",
    });
    alice = new Api(run.baseUrl, run.alice);
    const bytes = await makeImage("jpeg", 640, 480);
    const { intent } = await alice.uploadBytes(bytes, { filename: "p.jpg", contentType: "image/jpeg" });
    image = await alice.settled(intent.image.id);
  });
  afterAll(async () => run?.stop());

  const signed = (spec: string, id = image.id) => transformUrl(run.baseUrl, SIGNING_KEY, spec, id);

  it("makes the eager thumb before ready and serves presets cache-forever with ETag and 304", async () => {
    expect(image.status).toBe("ready");
    expect(image.placeholder).toMatch(/^[A-Za-z0-9+/=]{10,}$/);
    const variants = (await run.imgup.store.list(`${imagePrefix(image.id)}v/`)).objects;
    expect(variants.map((o) => o.key)).toEqual([
      variantKey(image.id, canonicalSpec(DEFAULT_PRESETS.thumb as TransformSpec), "webp"),
    ]);
    const res = await fetch(image.urls?.presets.thumb ?? "");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/webp");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get("content-length"))).toBe(body.length);
    expect(await sharp(body).metadata()).toMatchObject({ width: 200, height: 200, format: "webp" });
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[^"]+"$/);
    const again = await fetch(image.urls?.presets.thumb ?? "", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${run.baseUrl}/i/${image.id}/nonesuch`)).status).toBe(404);
  });

  it("negotiates f_auto from Accept: AVIF, then WebP, then the original format, with Vary: Accept", async () => {
    const url = `${run.baseUrl}/i/${image.id}/small`;
    const avif = await fetch(url, { headers: { accept: "image/avif,image/webp,*/*" } });
    const webp = await fetch(url, { headers: { accept: "image/webp,*/*" } });
    const plain = await fetch(url, { headers: { accept: "*/*" } });
    expect([avif, webp, plain].map((r) => r.headers.get("content-type"))).toEqual([
      "image/avif",
      "image/webp",
      "image/jpeg",
    ]);
    for (const r of [avif, webp, plain]) expect(r.headers.get("vary")).toBe("Accept");
    expect(new Set([avif, webp, plain].map((r) => r.headers.get("etag"))).size).toBe(3);
    expect(await sharp(Buffer.from(await plain.arrayBuffer())).metadata()).toMatchObject({
      width: 480,
      height: 360,
    });
  });

  it("serves signed on-the-fly specs; a bad signature is 403, a bad spec 400", async () => {
    const res = await fetch(signed("w_100,h_100,fit_cover,f_png"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("vary")).toBeNull();
    expect(await sharp(Buffer.from(await res.arrayBuffer())).metadata()).toMatchObject({
      width: 100,
      height: 100,
    });
    const url = new URL(signed("w_100,f_png"));
    const forged = url.toString().replace("w_100", "w_101");
    expect((await fetch(forged)).status).toBe(403);
    const otherKey = transformUrl(run.baseUrl, "x".repeat(40), "w_100,f_png", image.id);
    expect((await fetch(otherKey)).status).toBe(403);
    const bad = await fetch(`${run.baseUrl}/i/${url.pathname.split("/")[2]}/w_0,f_png/${image.id}`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "invalid_spec" });
  });

  it("runs exactly one transform for 200 concurrent requests of one missing variant", async () => {
    const url = signed("w_333,f_jpeg,q_70");
    const before = await transformsCounted(run);
    const responses = await Promise.all(Array.from({ length: 200 }, () => fetch(url)));
    const bodies = await Promise.all(responses.map(async (r) => Buffer.from(await r.arrayBuffer())));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(bodies.every((b) => b.equals(bodies[0] as Buffer))).toBe(true);
    expect((await transformsCounted(run)) - before).toBe(1);
    await fetch(url);
    expect((await transformsCounted(run)) - before).toBe(1);
  });

  it("applies EXIF orientation and strips EXIF and GPS from variants", async () => {
    const bytes = await sidewaysJpegWithGps();
    expect(await sharp(bytes).metadata()).toMatchObject({ orientation: 6, exif: expect.any(Buffer) });
    const { intent } = await alice.uploadBytes(bytes, { filename: "side.jpg", contentType: "image/jpeg" });
    const img = await alice.settled(intent.image.id);
    const res = await fetch(signed("w_40,f_jpeg", img.id));
    const out = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ width: 40, height: 80 });
    expect(meta.exif).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    // Orientation 6 turns the red left edge into the top edge.
    const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect(data[0]).toBeGreaterThan(200);
    expect(data[2]).toBeLessThan(60);
  });

  it("keeps private variants private and deleted ones gone at once", async () => {
    const bytes = await makeImage("png", 64, 64);
    const { intent } = await alice.uploadBytes(bytes, {
      filename: "s.png",
      contentType: "image/png",
      visibility: "private",
    });
    const img = await alice.settled(intent.image.id);
    expect((await fetch(`${run.baseUrl}/i/${img.id}/thumb`)).status).toBe(404);
    const ok = await fetch(img.urls?.presets.thumb ?? "");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toMatch(/^private, max-age=\d+$/);
    expect((await fetch(signed("w_10,f_png", img.id))).status).toBe(404);
    const pub = await alice.uploadBytes(bytes, { filename: "d.png", contentType: "image/png" });
    const gone = await alice.settled(pub.intent.image.id);
    expect((await fetch(gone.urls?.presets.thumb ?? "")).status).toBe(200);
    await alice.request("DELETE", `/v1/images/${gone.id}`);
    expect((await fetch(gone.urls?.presets.thumb ?? "")).status).toBe(404);
  });
});

describe("transform back-pressure", () => {
  it("answers 503 with Retry-After when the transform queue is full, 429 past the miss budget", async () => {
    const run = await startImgup(db.make(), {
      IMGUP_URL_SIGNING_KEYS: SIGNING_KEY,
      IMGUP_TRANSFORM_CONCURRENCY: "1",
      IMGUP_TRANSFORM_QUEUE: "1",
      IMGUP_TRANSFORM_MISSES_BURST: "12",
      IMGUP_TRANSFORM_MISSES_PER_SEC: "1",
    });
    try {
      const api = new Api(run.baseUrl, run.alice);
      const bytes = await makeImage("jpeg", 1600, 1200);
      const { intent } = await api.uploadBytes(bytes, { filename: "b.jpg", contentType: "image/jpeg" });
      await api.settled(intent.image.id);
      const urls = Array.from({ length: 10 }, (_, i) =>
        transformUrl(run.baseUrl, SIGNING_KEY, `w_${500 + i},f_avif`, intent.image.id),
      );
      const responses = await Promise.all(urls.map((u) => fetch(u)));
      const busy = responses.filter((r) => r.status === 503);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy[0]?.headers.get("retry-after")).toBe("1");
      expect(responses.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
      const more = [];
      for (let i = 0; i < 15; i++) {
        more.push(
          (await fetch(transformUrl(run.baseUrl, SIGNING_KEY, `w_${50 + i},f_jpeg`, intent.image.id))).status,
        );
      }
      expect(more).toContain(429);
    } finally {
      await run.stop();
    }
  });
});
