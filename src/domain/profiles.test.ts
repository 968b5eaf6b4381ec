import { describe, expect, it } from "vitest";
import { dimensionsExceeded, limitsFor, parseLimits, parseProfile, validRef } from "./profiles.ts";

const ctx = {
  supportedTypes: ["image/jpeg", "image/png", "image/webp"],
  presetNames: ["thumb", "avatar_96"],
};
const deployment = {
  maxBytes: 20_000_000,
  maxPixels: 50_000_000,
  allowedTypes: ["image/jpeg", "image/png", "image/webp"],
};

describe("upload profiles", () => {
  it("only narrows the deployment's policy", () => {
    const p = parseProfile(
      "avatar",
      { maxBytes: 5_000_000, allowedTypes: ["png", "jpg"], maxWidth: 512 },
      ctx,
    );
    expect(limitsFor(deployment, p)).toEqual({
      maxBytes: 5_000_000,
      allowedTypes: ["image/png", "image/jpeg"],
      maxWidth: 512,
      maxHeight: null,
      maxPixels: 50_000_000,
      eagerPresets: null,
    });
    const wide = parseProfile("wide", { maxBytes: 99_000_000, maxPixels: 99_000_000_000 }, ctx);
    expect(limitsFor(deployment, wide)).toMatchObject({ maxBytes: 20_000_000, maxPixels: 50_000_000 });
    expect(limitsFor(deployment, null).allowedTypes).toEqual(deployment.allowedTypes);
  });

  it("checks dimensions against both bounds", () => {
    const limits = { maxWidth: 100, maxHeight: 50 };
    expect(dimensionsExceeded(limits, 100, 50)).toBeNull();
    expect(dimensionsExceeded(limits, 101, 50)).toMatch(/wider than 100/);
    expect(dimensionsExceeded(limits, 100, 51)).toMatch(/taller than 50/);
    expect(dimensionsExceeded({ maxWidth: null, maxHeight: null }, 1e6, 1e6)).toBeNull();
  });

  it("reads a stored snapshot back, and nothing from garbage", () => {
    const limits = limitsFor(deployment, parseProfile("a", { maxWidth: 9 }, ctx));
    expect(parseLimits(JSON.stringify(limits))).toEqual(limits);
    expect(parseLimits(null)).toBeNull();
    expect(parseLimits("{")).toBeNull();
    expect(parseLimits('{"maxBytes":"x"}')).toBeNull();
  });

  it("refuses what it cannot apply", () => {
    expect(() => parseProfile("a", { maxWidth: 1.5 }, ctx)).toThrow(/maxWidth/);
    expect(() => parseProfile("a", { allowedTypes: [] }, ctx)).toThrow(/must not be empty/);
    expect(() => parseProfile("a", { allowedTypes: "png" }, ctx)).toThrow(/list of strings/);
    expect(() => parseProfile("a", { claimRequired: "yes" }, ctx)).toThrow(/boolean/);
    expect(() => parseProfile("a", null, ctx)).toThrow(/JSON object/);
    expect(() => parseProfile("-a", {}, ctx)).toThrow(/profile name/);
  });

  it("accepts app references without control characters", () => {
    expect(validRef("users/42/avatar")).toBe(true);
    expect(validRef("")).toBe(false);
    expect(validRef("a\nb")).toBe(false);
    expect(validRef("x".repeat(257))).toBe(false);
  });
});
