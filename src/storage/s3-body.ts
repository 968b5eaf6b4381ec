import { Transform, type TransformCallback } from "node:stream";
import { ERRORS } from "../domain/errors.ts";

/**
 * Passes exactly `length` bytes through and fails otherwise. The HTTP client sends the declared
 * Content-Length and then whatever the stream yields: a longer stream would spill bytes onto the
 * connection and a shorter one would leave the server waiting, so both fail here first.
 */
export function exactLength(length: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      if (seen > length) return done(ERRORS.contentLengthMismatch("The body is longer than declared"));
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      done(seen < length ? ERRORS.incompleteBody() : null);
    },
  });
}

/** Fails once more than `limit` bytes passed: bounds a body of unknown length. */
export function atMost(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      done(seen > limit ? ERRORS.entityTooLarge() : null, chunk);
    },
  });
}

/** x-amz-checksum-sha256 is base64; the rest of imgup speaks lower-case hex. */
export const sha256HexToBase64 = (hex: string): string => Buffer.from(hex, "hex").toString("base64");

/**
 * The object's SHA-256 when the storage reports a whole-object one. Multipart objects carry a
 * checksum of the part checksums ("…-3"), which is not the hash of the bytes, so it is ignored.
 */
export function sha256FromChecksum(checksum: string | undefined, type?: string): string | null {
  if (!checksum || checksum.includes("-") || (type !== undefined && type !== "FULL_OBJECT")) return null;
  const raw = Buffer.from(checksum, "base64");
  return raw.length === 32 ? raw.toString("hex") : null;
}
