import { describe, expect, it } from "vitest";
import { AppError } from "./errors.ts";
import { validateIntent } from "./upload-policy.ts";

const policy = {
  maxBytes: 1000,
  allowedTypes: ["image/jpeg", "image/png"],
  defaultVisibility: "public" as const,
};
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? `${err.status} ${err.code}` : "other";
  }
  return "none";
};

describe("validateIntent", () => {
  it("normalises a good intent", () => {
    expect(
      validateIntent(
        { filename: "../../etc/Photo.JPG", contentType: "IMAGE/JPEG", size: 10, sha256: "A".repeat(64) },
        policy,
      ),
    ).toEqual({
      filename: "Photo.JPG",
      contentType: "image/jpeg",
      size: 10,
      sha256: "a".repeat(64),
      visibility: "public",
      method: "put",
    });
  });

  it("refuses with the right status and code", () => {
    const base = { filename: "a.jpg", contentType: "image/jpeg", size: 10 };
    expect(codeOf(() => validateIntent({ ...base, contentType: "image/svg+xml" }, policy))).toBe(
      "415 unsupported_media_type",
    );
    expect(codeOf(() => validateIntent({ ...base, size: 1001 }, policy))).toBe("413 payload_too_large");
    expect(codeOf(() => validateIntent({ ...base, size: 0 }, policy))).toBe("400 validation_failed");
    expect(codeOf(() => validateIntent({ ...base, size: 1.5 }, policy))).toBe("400 validation_failed");
    expect(codeOf(() => validateIntent({ ...base, filename: "dir/" }, policy))).toBe("400 validation_failed");
    expect(codeOf(() => validateIntent({ ...base, filename: "\u0000\u0001" }, policy))).toBe(
      "400 validation_failed",
    );
    expect(codeOf(() => validateIntent({ ...base, sha256: "xyz" }, policy))).toBe("400 validation_failed");
    expect(codeOf(() => validateIntent(base, policy))).toBe("none");
  });
});
