import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { sniff } from "../../src/domain/sniff.ts";
import { probeImage } from "../../src/imaging/probe.ts";
import { transformImage } from "../../src/imaging/transform.ts";
import {
  BLUE,
  near,
  photo,
  photoLike,
  pixel,
  quadrants,
  RED,
  spec,
  WHITE,
} from "../support/image-builders.ts";

const MAX = 50_000_000;

describe("orientation and metadata", () => {
  it("applies EXIF orientation 6 and lets no EXIF, GPS, XMP or ICC through", async () => {
    const input = await quadrants(120, 80)
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .withExifMerge({ IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 24/1" } })
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>')
      .toBuffer();
    const inMeta = await sharp(input).metadata();
    expect(inMeta.orientation).toBe(6);
    // Tag 0x8825 (the GPS IFD), little-endian as sharp writes it.
    expect(inMeta.exif?.includes(Buffer.from([0x25, 0x88]))).toBe(true);
    expect(inMeta.xmp).toBeDefined();
    expect(await probeImage(input, { maxPixels: MAX })).toMatchObject({
      ok: true,
      width: 80,
      height: 120,
      orientation: 6,
    });

    for (const format of ["jpeg", "png", "webp", "avif"] as const) {
      const out = await transformImage(input, spec({ format }), { maxPixels: MAX });
      expect([out.width, out.height]).toEqual([80, 120]);
      const meta = await sharp(out.data).metadata();
      expect([meta.width, meta.height]).toEqual([80, 120]);
      expect(meta.exif, format).toBeUndefined();
      expect(meta.xmp, format).toBeUndefined();
      expect(meta.icc, format).toBeUndefined();
      expect(meta.iptc, format).toBeUndefined();
      expect(meta.orientation, format).toBeUndefined();
      expect(out.data.includes("Exif")).toBe(false);
      // Rotated 90° clockwise: the stored top-left (red) is now top-right, bottom-left (blue) top-left.
      near(await pixel(out.data, 79, 0), RED, 40);
      near(await pixel(out.data, 0, 0), BLUE, 40);
      near(await pixel(out.data, 0, 119), WHITE, 40);
    }
  });
});

describe("inputs", () => {
  it("takes a progressive JPEG and writes progressive JPEG", async () => {
    const input = await photo(300, 200).jpeg({ progressive: true }).toBuffer();
    expect((await sharp(input).metadata()).isProgressive).toBe(true);
    const out = await transformImage(input, spec({ width: 150, format: "jpeg" }), { maxPixels: MAX });
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height, meta.isProgressive]).toEqual([150, 100, true]);
  });

  it("keeps alpha in WebP, PNG and AVIF and flattens onto white in JPEG", async () => {
    const input = await quadrants(100, 100, true).png().toBuffer();
    for (const format of ["webp", "png", "avif"] as const) {
      const out = await transformImage(input, spec({ format }), { maxPixels: MAX });
      expect((await sharp(out.data).metadata()).hasAlpha, format).toBe(true);
      expect((await pixel(out.data, 90, 10))[3], format).toBeLessThan(10);
      expect((await pixel(out.data, 10, 10))[3], format).toBeGreaterThan(245);
    }
    const jpeg = await transformImage(input, spec({ format: "jpeg" }), { maxPixels: MAX });
    expect((await sharp(jpeg.data).metadata()).channels).toBe(3);
    near(await pixel(jpeg.data, 90, 10), [255, 255, 255], 8);
    near(await pixel(jpeg.data, 10, 10), RED, 30);
  });

  it("turns a 16-bit PNG into 8-bit output", async () => {
    const input = await quadrants(64, 64).toColourspace("rgb16").png().toBuffer();
    expect((await sharp(input).metadata()).depth).toBe("ushort");
    for (const format of ["png", "webp"] as const) {
      const out = await transformImage(input, spec({ format }), { maxPixels: MAX });
      expect((await sharp(out.data).metadata()).depth).toBe("uchar");
      near(await pixel(out.data, 10, 10), RED, 6);
    }
  });

  it("converts a CMYK JPEG to sRGB with sane colours", async () => {
    const input = await quadrants(64, 64).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(input).metadata()).space).toBe("cmyk");
    const out = await transformImage(input, spec({ format: "jpeg" }), { maxPixels: MAX });
    const meta = await sharp(out.data).metadata();
    expect([meta.space, meta.channels, meta.icc]).toEqual(["srgb", 3, undefined]);
    const [r, g, b] = await pixel(out.data, 10, 10);
    expect(r).toBeGreaterThan(170);
    expect(g).toBeLessThan(90);
    expect(b).toBeLessThan(90);
    near(await pixel(out.data, 50, 50), WHITE, 30);
  });

  it("converts a wide-gamut (Display P3) input to sRGB without a profile", async () => {
    const input = await quadrants(64, 64).withIccProfile("p3").png().toBuffer();
    expect((await sharp(input).metadata()).icc).toBeDefined();
    const out = await transformImage(input, spec({ format: "webp" }), { maxPixels: MAX });
    expect((await sharp(out.data).metadata()).icc).toBeUndefined();
    const [r, g] = await pixel(out.data, 10, 10);
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(60);
  });

  it("keeps the first frame of an animated GIF, and every frame when animation is enabled", async () => {
    const frame = (c: string) =>
      sharp({ create: { width: 60, height: 40, channels: 3, background: c } })
        .png()
        .toBuffer();
    const gif = await sharp([await frame("#d02020"), await frame("#2020d0"), await frame("#20d020")], {
      join: { animated: true },
    })
      .gif({ delay: [100, 100, 100], loop: 0 })
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(3);

    for (const format of ["gif", "webp", "png"] as const) {
      const first = await transformImage(gif, spec({ width: 30, format }), { maxPixels: MAX });
      const meta = await sharp(first.data).metadata();
      expect(meta.pages ?? 1, format).toBe(1);
      expect([first.width, first.height]).toEqual([30, 20]);
      near(await pixel(first.data, 5, 5), [0xd0, 0x20, 0x20], 30);
    }
    for (const format of ["gif", "webp"] as const) {
      const all = await transformImage(gif, spec({ width: 30, format }), { maxPixels: MAX, animated: true });
      const meta = await sharp(all.data, { pages: -1 }).metadata();
      expect(meta.pages, format).toBe(3);
      expect([all.width, all.height, meta.pageHeight]).toEqual([30, 20, 20]);
    }
    // JPEG and AVIF cannot animate: first frame even when animation is on.
    const jpeg = await transformImage(gif, spec({ format: "jpeg" }), { maxPixels: MAX, animated: true });
    expect([jpeg.width, jpeg.height]).toEqual([60, 40]);
  });

  it("reads WebP and AVIF", async () => {
    for (const input of [
      await photo(200, 100).webp().toBuffer(),
      await photo(200, 100).avif({ effort: 2 }).toBuffer(),
    ]) {
      for (const format of ["jpeg", "webp", "avif", "png", "gif"] as const) {
        const out = await transformImage(input, spec({ width: 100, format }), { maxPixels: MAX });
        expect([out.width, out.height]).toEqual([100, 50]);
        expect(sniff(out.data)).toMatchObject({ kind: "image", format, mime: out.contentType });
      }
    }
  });

  it("encodes a 1280-px AVIF (the effort setting keeps it fast; bench measures it)", async () => {
    const input = await (await photoLike(1280, 960)).jpeg().toBuffer();
    const out = await transformImage(input, spec({ format: "avif" }), { maxPixels: MAX });
    expect([out.width, out.height, out.contentType]).toEqual([1280, 960, "image/avif"]);
  });

  it("honours the quality", async () => {
    const input = await photo(400, 300).png().toBuffer();
    for (const format of ["jpeg", "webp", "avif"] as const) {
      const low = await transformImage(input, spec({ format, quality: 10 }), { maxPixels: MAX });
      const high = await transformImage(input, spec({ format, quality: 95 }), { maxPixels: MAX });
      expect(low.data.length, format).toBeLessThan(high.data.length);
    }
  });
});
