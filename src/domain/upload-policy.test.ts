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
      partSize: null,
    });
  });

  it("takes a multipart client's part size only when S3 could use it", () => {
    const MiB = 1024 * 1024;
    const big = { ...policy, maxBytes: 100_000 * MiB };
    const base = {
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: 60 * MiB,
      method: "multipart" as const,
    };
    expect(validateIntent({ ...base, partSize: 6 * MiB }, big).partSize).toBe(6 * MiB);
    expect(validateIntent(base, big).partSize).toBeNull();
    for (const partSize of [5 * MiB - 1, 6 * MiB + 0.5, 6 * 1024 * MiB]) {
      expect(codeOf(() => validateIntent({ ...base, partSize }, big))).toBe("400 validation_failed");
    }
    // More than 10,000 parts.
    expect(codeOf(() => validateIntent({ ...base, size: 60_000 * MiB, partSize: 5 * MiB }, big))).toBe(
      "400 validation_failed",
    );
    // A single-request upload has no parts.
    expect(codeOf(() => validateIntent({ ...base, method: "put", partSize: 6 * MiB }, big))).toBe(
      "400 validation_failed",
    );
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
