import { describe, expect, it } from "vitest";
import { newImageId } from "./ids.ts";
import { hashPrefix, imagePrefix, isImageId, originalKey, parseKey, variantKey } from "./keys.ts";

describe("object keys", () => {
  const id = newImageId();

  it("puts a 4-hex hash prefix first, then the id; never a date", () => {
    expect(originalKey(id)).toBe(`${hashPrefix(id)}/${id}/original`);
    expect(hashPrefix(id)).toMatch(/^[0-9a-f]{4}$/);
    expect(variantKey(id, "w_400", "webp")).toBe(`${imagePrefix(id)}v/w_400.webp`);
  });

  it("spreads ids over prefixes", () => {
    const prefixes = new Set(Array.from({ length: 200 }, () => hashPrefix(newImageId())));
    expect(prefixes.size).toBeGreaterThan(150);
  });

  it("parses its own keys and refuses everything else", () => {
    expect(parseKey(originalKey(id))).toEqual({ kind: "original", imageId: id, prefix: hashPrefix(id) });
    expect(parseKey(variantKey(id, "thumb", "webp"))).toMatchObject({ kind: "variant", imageId: id });
    expect(parseKey(`0000/${id}/original`)).toBeNull();
    expect(parseKey(`${hashPrefix(id)}/${id}/other`)).toBeNull();
    expect(parseKey("uploads/2026/photo.jpg")).toBeNull();
    expect(parseKey("")).toBeNull();
  });

  it("makes time-ordered UUIDv7 ids", () => {
    const a = newImageId(1_000);
    const b = newImageId(2_000);
    expect(isImageId(a)).toBe(true);
    expect(a < b).toBe(true);
    expect(a[14]).toBe("7");
  });
});
