import { createHash } from "node:crypto";

/**
 * Object key layout (docs/architecture.md): `{p}/{imageId}/upload` (where clients and proxy uploads
 * write), `{p}/{imageId}/original` (only the worker writes it, by copying validated bytes),
 * `{p}/{imageId}/public` and `{p}/{imageId}/v/{spec}.{ext}`, where p is 4 hex chars of a hash of
 * the id, so keys spread over partitions and every object of an image shares one prefix. Never a
 * date, never the client's filename.
 */
export function hashPrefix(imageId: string): string {
  return createHash("sha256").update(imageId).digest("hex").slice(0, 4);
}

export function imagePrefix(imageId: string): string {
  return `${hashPrefix(imageId)}/${imageId}/`;
}

export function originalKey(imageId: string): string {
  return `${imagePrefix(imageId)}original`;
}

/**
 * Where an upload lands: presigned URLs and forms, multipart uploads and proxy uploads all write
 * here, and only its storage events start processing. Anything written here after the worker
 * promoted the validated bytes to the original changes nothing that is served.
 */
export function uploadKey(imageId: string): string {
  return `${imagePrefix(imageId)}upload`;
}

/** The suffix of upload keys: a bucket notification filtered on it announces nothing else. */
export const UPLOAD_KEY_SUFFIX = "/upload";

export function variantKey(imageId: string, canonicalSpec: string, ext: string): string {
  return `${imagePrefix(imageId)}v/${canonicalSpec}.${ext}`;
}

/**
 * What anyone may fetch as a public original (docs/architecture.md "Object key layout"): the upload with its EXIF/XMP/GPS
 * removed, made at processing time when the upload carried any. Under the image's prefix, so every
 * delete and purge takes it too.
 */
export function publicOriginalKey(imageId: string): string {
  return `${imagePrefix(imageId)}public`;
}

export type ParsedKey =
  | { kind: "original" | "upload" | "public"; imageId: string; prefix: string }
  | { kind: "variant"; imageId: string; prefix: string; name: string };

const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isImageId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Parse a key of ours; anything else (or a forged prefix) is null. */
export function parseKey(key: string): ParsedKey | null {
  const parts = key.split("/");
  if (parts.length < 3) return null;
  const [prefix, imageId, ...rest] = parts as [string, string, ...string[]];
  if (!isImageId(imageId) || prefix !== hashPrefix(imageId)) return null;
  if (rest.length === 1 && (rest[0] === "original" || rest[0] === "upload" || rest[0] === "public"))
    return { kind: rest[0], imageId, prefix };
  if (rest.length === 2 && rest[0] === "v" && rest[1])
    return { kind: "variant", imageId, prefix, name: rest[1] };
  return null;
}
