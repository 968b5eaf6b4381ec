import { describe, expect, it } from "vitest";
import { signPath, signTransform, verifyPathSignature, verifyTransformSignature } from "./url-signature.ts";

describe("private URL signatures", () => {
  const secret = "s".repeat(32);
  const path = "/i/abc/original";
  const exp = 2_000;
  const sig = signPath(secret, path, exp);

  it("accepts the signed path until it expires", () => {
    expect(verifyPathSignature(secret, path, String(exp), sig, 1_999)).toBe(true);
    expect(verifyPathSignature(secret, path, String(exp), sig, 2_000)).toBe(true);
    expect(verifyPathSignature(secret, path, String(exp), sig, 2_001)).toBe(false);
  });

  it("refuses another path, another expiry, another key, or junk", () => {
    expect(verifyPathSignature(secret, "/i/abd/original", String(exp), sig, 0)).toBe(false);
    expect(verifyPathSignature(secret, path, String(exp + 1), sig, 0)).toBe(false);
    expect(verifyPathSignature("t".repeat(32), path, String(exp), sig, 0)).toBe(false);
    expect(verifyPathSignature(secret, path, undefined, sig, 0)).toBe(false);
    expect(verifyPathSignature(secret, path, "12e3", sig, 0)).toBe(false);
    expect(verifyPathSignature(secret, path, String(exp), `${sig}x`, 0)).toBe(false);
  });
});

describe("transform URL signatures", () => {
  const spec = "w_400,h_300,fit_cover,f_auto";
  const id = "01a20093-bb84-7083-ac30-021ce1fa58b9";

  it("verifies with any current key, refuses other specs, ids and keys", () => {
    const old = "o".repeat(32);
    const current = "c".repeat(32);
    const sig = signTransform(old, spec, id);
    expect(verifyTransformSignature([current, old], spec, id, sig)).toBe(true);
    expect(verifyTransformSignature([current], spec, id, sig)).toBe(false);
    expect(verifyTransformSignature([old], "w_401,h_300,fit_cover,f_auto", id, sig)).toBe(false);
    expect(verifyTransformSignature([old], spec, id.replace("9", "8"), sig)).toBe(false);
    expect(verifyTransformSignature([old], spec, id, "")).toBe(false);
  });
});
