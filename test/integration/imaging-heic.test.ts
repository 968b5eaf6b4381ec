import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { thumbHashToApproximateAspectRatio, thumbHashToAverageRGBA } from "thumbhash";
import { describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.ts";
import { decodeHeic } from "../../src/imaging/heic.ts";
import { thumbhashOf } from "../../src/imaging/placeholder.ts";
import { probeImage } from "../../src/imaging/probe.ts";
import { transformImage } from "../../src/imaging/transform.ts";
import { BLUE, GREEN, near, photo, pixel, quadrants, RED, spec, WHITE } from "../support/image-builders.ts";

const MAX = 50_000_000;
const FIXTURES = path.join(import.meta.dirname, "../fixtures/images");
const heic = readFileSync(path.join(FIXTURES, "quadrants.heic"));
const heicAlpha = readFileSync(path.join(FIXTURES, "quadrants-alpha.heic"));

describe("HEIC", () => {
  it("decodes the real HEIC fixtures (libheif WASM) with the right pixels", async () => {
    const { data, width, height, hasAlpha } = await decodeHeic(heic, { maxPixels: MAX });
    expect([width, height, hasAlpha, data.length]).toEqual([320, 240, false, 320 * 240 * 4]);
    const alpha = await decodeHeic(heicAlpha, { maxPixels: MAX });
    expect(alpha.hasAlpha).toBe(true);
    expect(alpha.data[(10 * 320 + 300) * 4 + 3]).toBeLessThan(10);
  });

  it("checks the pixel limit from the header", async () => {
    const err = await decodeHeic(heic, { maxPixels: 320 * 240 - 1 }).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe("unprocessable_image");
    expect((err as { extra: { reason: string } }).extra.reason).toBe("too_many_pixels");
    expect(await probeImage(heic, { maxPixels: 1000 })).toMatchObject({
      ok: false,
      reason: "too_many_pixels",
    });
  });

  it("probes as ready and transforms to JPEG, WebP and AVIF", async () => {
    expect(await probeImage(heic, { maxPixels: MAX })).toEqual({
      ok: true,
      width: 320,
      height: 240,
      format: "heic",
      pages: 1,
      hasAlpha: false,
      orientation: 1,
    });
    for (const format of ["jpeg", "webp", "avif"] as const) {
      const out = await transformImage(heic, spec({ width: 160, format }), { maxPixels: MAX });
      expect([out.width, out.height, out.format]).toEqual([160, 120, format]);
      expect((await sharp(out.data).metadata()).hasAlpha).toBe(false);
      // Corners away from the ripple's extremes: red, green / blue, white.
      near(await pixel(out.data, 20, 20), RED, 40);
      near(await pixel(out.data, 140, 20), GREEN, 40);
      near(await pixel(out.data, 20, 100), BLUE, 40);
      near(await pixel(out.data, 140, 100), WHITE, 40);
    }
    const withAlpha = await transformImage(heicAlpha, spec({ format: "webp" }), { maxPixels: MAX });
    expect((await pixel(withAlpha.data, 300, 10))[3]).toBeLessThan(10);
  });
});

describe("thumbhashOf", () => {
  it("summarises colour, alpha and aspect ratio in a few bytes", async () => {
    const red = await sharp({ create: { width: 300, height: 150, channels: 3, background: "#e02020" } })
      .jpeg()
      .toBuffer();
    const hash = Buffer.from(await thumbhashOf(red), "base64");
    expect(hash.length).toBeLessThan(40);
    expect(thumbHashToApproximateAspectRatio(hash)).toBeCloseTo(2, 0);
    const avg = thumbHashToAverageRGBA(hash);
    expect(avg.r).toBeGreaterThan(0.7);
    expect(avg.g).toBeLessThan(0.3);
    expect(avg.a).toBe(1);

    const transparent = Buffer.from(
      await thumbhashOf(await quadrants(100, 100, true).png().toBuffer()),
      "base64",
    );
    expect(thumbHashToAverageRGBA(transparent).a).toBeLessThan(0.9);
  });

  it("works on HEIC and on rotated JPEG", async () => {
    expect(thumbHashToApproximateAspectRatio(Buffer.from(await thumbhashOf(heic), "base64"))).toBeCloseTo(
      4 / 3,
      0,
    );
    const rotated = await photo(200, 100).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const ratio = thumbHashToApproximateAspectRatio(Buffer.from(await thumbhashOf(rotated), "base64"));
    expect(ratio).toBeLessThan(1);
  });
});
