import { describe, expect, it } from "vitest";
import { EMPTY_USAGE, quotaExceeded, quotaVerdict, variantCap, variantsToEvict } from "./quota.ts";

const at = (ms: number) => new Date(ms);

describe("quotaVerdict", () => {
  const usage = {
    ...EMPTY_USAGE,
    originalBytes: 60,
    variantBytes: 20,
    reservedBytes: 10,
    images: 2,
    pendingImages: 1,
  };
  it("counts stored and reserved bytes; exactly the limit fits", () => {
    expect(quotaVerdict(usage, { maxBytes: 100, maxImages: null }, 10)).toBeNull();
    expect(quotaVerdict(usage, { maxBytes: 100, maxImages: null }, 11)).toEqual({
      limit: "bytes",
      used: 90,
      requested: 11,
      max: 100,
    });
  });
  it("counts stored and in-flight images, and says so first", () => {
    expect(quotaVerdict(usage, { maxBytes: 0, maxImages: 3 }, 1)).toMatchObject({ limit: "images", used: 3 });
    expect(quotaVerdict(usage, { maxBytes: null, maxImages: 4 }, 1)).toBeNull();
  });
  it("maps to 413 for bytes and 403 for images, one code", () => {
    expect(quotaExceeded({ limit: "bytes", used: 1, requested: 1, max: 1 })).toMatchObject({
      status: 413,
      code: "quota_exceeded",
    });
    expect(quotaExceeded({ limit: "images", used: 1, requested: 1, max: 1 })).toMatchObject({
      status: 403,
      code: "quota_exceeded",
    });
  });
});

describe("variant cap", () => {
  it("is a multiple of the original with a floor; ratio 0 is no cap", () => {
    expect(variantCap(1000, { ratio: 4, minBytes: 100 })).toBe(4000);
    expect(variantCap(10, { ratio: 4, minBytes: 100 })).toBe(100);
    expect(variantCap(10, { ratio: 0, minBytes: 100 })).toBeNull();
  });
  it("evicts least recently accessed first until the new one fits; a too large one evicts nothing", () => {
    const stored = [
      { key: "new", bytes: 30, lastAccessedAt: at(3) },
      { key: "old", bytes: 30, lastAccessedAt: at(1) },
      { key: "mid", bytes: 30, lastAccessedAt: at(2) },
    ];
    expect(variantsToEvict(stored, 10, 100)).toEqual([]);
    expect(variantsToEvict(stored, 20, 100)).toEqual(["old"]);
    expect(variantsToEvict(stored, 50, 100)).toEqual(["old", "mid"]);
    expect(variantsToEvict(stored, 101, 100)).toBeNull();
    expect(variantsToEvict(stored, 1000, null)).toEqual([]);
  });
});
