import { describe, expect, it } from "vitest";
import { signPath, verifyPathSignature } from "./url-signature.ts";

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
