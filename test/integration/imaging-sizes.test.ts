import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.ts";
import type { TransformSpec } from "../../src/domain/transform-spec.ts";
import { transformImage } from "../../src/imaging/transform.ts";
import { near, photo, pixel, spec } from "../support/image-builders.ts";

const MAX = 50_000_000;

describe("sizes", () => {
  const cases: Array<[string, Partial<TransformSpec>, [number, number]]> = [
    ["no size", {}, [400, 300]],
    ["inside", { width: 200, height: 200, fit: "inside" }, [200, 150]],
    ["cover", { width: 200, height: 200, fit: "cover" }, [200, 200]],
    ["contain", { width: 200, height: 200, fit: "contain" }, [200, 200]],
    ["fill", { width: 200, height: 100, fit: "fill" }, [200, 100]],
    ["width only", { width: 100 }, [100, 75]],
    ["height only", { height: 100 }, [133, 100]],
    ["dpr 2", { width: 100, height: 100, fit: "cover", dpr: 2 }, [200, 200]],
    ["dpr 1.5", { width: 101, dpr: 1.5 }, [152, 114]],
    ["never enlarged (inside)", { width: 800 }, [400, 300]],
    ["never enlarged (dpr)", { width: 300, dpr: 2 }, [400, 300]],
    ["never enlarged (cover)", { width: 800, height: 800, fit: "cover" }, [400, 300]],
  ];
  it.each(cases)("%s", async (_name, s, expected) => {
    const input = await photo(400, 300).jpeg().toBuffer();
    const out = await transformImage(input, spec({ ...s, format: "webp" }), { maxPixels: MAX });
    const meta = await sharp(out.data).metadata();
    expect([out.width, out.height]).toEqual(expected);
    expect([meta.width, meta.height]).toEqual(expected);
  });

  it("pads contain with white in JPEG and with transparency in WebP", async () => {
    const input = await photo(400, 200).jpeg().toBuffer();
    const box = { width: 100, height: 100, fit: "contain" as const };
    const jpeg = await transformImage(input, spec({ ...box, format: "jpeg" }), { maxPixels: MAX });
    near(await pixel(jpeg.data, 50, 2), [255, 255, 255], 8);
    const webp = await transformImage(input, spec({ ...box, format: "webp" }), { maxPixels: MAX });
    expect((await pixel(webp.data, 50, 2))[3]).toBe(0);
  });
});

describe("failures and limits", () => {
  it("refuses an input over the pixel limit before decoding", async () => {
    const input = await photo(100, 100).png().toBuffer();
    const err = await transformImage(input, spec({ format: "png" }), { maxPixels: 9_999 }).catch(
      (e: unknown) => e,
    );
    expect(isAppError(err) && [err.code, err.status, err.extra.reason]).toEqual([
      "unprocessable_image",
      422,
      "too_many_pixels",
    ]);
  });

  it("refuses SVG instead of rendering it", async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    const err = await transformImage(svg, spec({ format: "png" }), { maxPixels: MAX }).catch(
      (e: unknown) => e,
    );
    expect(isAppError(err) && err.code).toBe("unprocessable_image");
  });

  it("stops at once when aborted", async () => {
    const input = await photo(100, 100).png().toBuffer();
    const controller = new AbortController();
    controller.abort();
    const err = await transformImage(input, spec({ format: "png" }), {
      maxPixels: MAX,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("AbortError");
  });

  it("gives up when out of time", async () => {
    const input = await photo(100, 100).png().toBuffer();
    const err = await transformImage(input, spec({ format: "png" }), { maxPixels: MAX, timeoutMs: -1 }).catch(
      (e: unknown) => e,
    );
    expect(isAppError(err) && [err.code, err.extra.reason]).toEqual(["unprocessable_image", "timeout"]);
  });
});
