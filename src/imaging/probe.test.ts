import { describe, expect, it } from "vitest";
import { photo } from "../../test/support/image-builders.ts";
import { thumbhashOf } from "./placeholder.ts";
import { probeImage } from "./probe.ts";

const limits = { maxPixels: 50_000_000 };
const cut = (bytes: Buffer, fraction: number) => bytes.subarray(0, Math.floor(bytes.length * fraction));

describe("probeImage", () => {
  const big = () => photo(640, 480);

  it.each([
    ["baseline", false],
    ["progressive", true],
  ])("finds a %s JPEG cut short corrupt, with and without the placeholder", async (_kind, progressive) => {
    const jpeg = await big().jpeg({ quality: 85, progressive }).toBuffer();
    for (const fraction of [0.5, 0.95, 0.995]) {
      for (const placeholder of [false, true]) {
        const probe = await probeImage(cut(jpeg, fraction), { ...limits, placeholder });
        expect(probe, `${fraction} placeholder=${placeholder}`).toMatchObject({
          ok: false,
          reason: "corrupt",
        });
      }
    }
  });

  it("makes the placeholder in the validating decode: the same ThumbHash as on its own", async () => {
    for (const bytes of [await big().jpeg().toBuffer(), await big().png().toBuffer()]) {
      const probe = await probeImage(bytes, { ...limits, placeholder: true });
      expect(probe).toMatchObject({ ok: true, width: 640, height: 480 });
      expect(probe.ok && probe.placeholder).toBe(await thumbhashOf(bytes, limits));
    }
  });

  it("leaves the placeholder out unless asked", async () => {
    const probe = await probeImage(await big().jpeg().toBuffer(), limits);
    expect(probe.ok).toBe(true);
    expect(probe).not.toHaveProperty("placeholder");
  });
});
