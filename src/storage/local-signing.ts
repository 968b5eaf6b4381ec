import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signed upload URLs of the local driver: what SigV4 pins in a presigned S3 request, reduced to
 * one HMAC-SHA256 over a canonical list of every value the upload must honour.
 */

export interface PutClaims {
  kind: "put";
  key: string;
  /** Unix seconds. */
  exp: number;
  contentType: string;
  contentLength: number;
  /** Lower-case hex, or null when no checksum is pinned. */
  sha256: string | null;
}

export interface PartClaims {
  kind: "part";
  key: string;
  exp: number;
  uploadId: string;
  partNumber: number;
  /** Exactly this many bytes: a part URL cannot carry more than the intent declared. */
  contentLength: number;
}

export type UploadClaims = PutClaims | PartClaims;

// JSON array of the fields: unambiguous whatever characters the values hold, and the kind plus
// the fixed positions keep a part URL from being replayed as a plain PUT (and back).
function canonical(c: UploadClaims): string {
  return c.kind === "put"
    ? JSON.stringify(["imgup-local-v1", "PUT", c.key, c.exp, c.contentType, c.contentLength, c.sha256 ?? ""])
    : JSON.stringify(["imgup-local-v2", "PART", c.key, c.exp, c.uploadId, c.partNumber, c.contentLength]);
}

const hmac = (secret: string, data: string) => createHmac("sha256", secret).update(data).digest();

export function signClaims(secret: string, claims: UploadClaims): string {
  return hmac(secret, canonical(claims)).toString("base64url");
}

function safeEqual(expected: Buffer, given: string): boolean {
  const got = Buffer.from(given, "base64url");
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export function verifyClaims(secret: string, claims: UploadClaims, signature: string): boolean {
  return safeEqual(hmac(secret, canonical(claims)), signature);
}

/** The query string of a signed URL. */
export function claimsQuery(claims: UploadClaims, signature: string): string {
  const q = new URLSearchParams();
  if (claims.kind === "part") {
    q.set("uploadId", claims.uploadId);
    q.set("partNumber", String(claims.partNumber));
    q.set("len", String(claims.contentLength));
  }
  q.set("exp", String(claims.exp));
  if (claims.kind === "put") {
    q.set("ct", claims.contentType);
    q.set("len", String(claims.contentLength));
    if (claims.sha256) q.set("sha256", claims.sha256);
  }
  q.set("sig", signature);
  return q.toString();
}

const INT = /^\d{1,15}$/;

/** The claims a request's query asserts, or null when they are malformed (which the caller refuses as a bad signature). */
export function parseClaims(
  key: string,
  query: Record<string, string | undefined>,
): { claims: UploadClaims; signature: string } | null {
  const { exp, sig } = query;
  if (!exp || !sig || !INT.test(exp)) return null;
  if (query.uploadId !== undefined || query.partNumber !== undefined) {
    const { uploadId, partNumber, len } = query;
    if (!uploadId || !partNumber || !INT.test(partNumber) || !len || !INT.test(len)) return null;
    return {
      claims: {
        kind: "part",
        key,
        exp: Number(exp),
        uploadId,
        partNumber: Number(partNumber),
        contentLength: Number(len),
      },
      signature: sig,
    };
  }
  const { ct, len, sha256 } = query;
  if (ct === undefined || !len || !INT.test(len)) return null;
  return {
    claims: {
      kind: "put",
      key,
      exp: Number(exp),
      contentType: ct,
      contentLength: Number(len),
      sha256: sha256 || null,
    },
    signature: sig,
  };
}

/** Policy of a browser form upload, carried base64url-encoded in the form and signed as such. */
export interface PostPolicy {
  key: string;
  contentType: string;
  minBytes: number;
  maxBytes: number;
  /** ISO 8601. */
  expiresAt: string;
}

export function encodePolicy(policy: PostPolicy): string {
  return Buffer.from(JSON.stringify(policy)).toString("base64url");
}

export function signPolicy(secret: string, encodedPolicy: string): string {
  return hmac(secret, `imgup-local-v1\nPOST\n${encodedPolicy}`).toString("base64url");
}

/** The decoded policy when the signature matches and its shape is right, else null. */
export function verifyPolicy(secret: string, encodedPolicy: string, signature: string): PostPolicy | null {
  if (!safeEqual(hmac(secret, `imgup-local-v1\nPOST\n${encodedPolicy}`), signature)) return null;
  try {
    const p = JSON.parse(Buffer.from(encodedPolicy, "base64url").toString("utf8")) as Partial<PostPolicy>;
    const ok =
      typeof p.key === "string" &&
      typeof p.contentType === "string" &&
      Number.isSafeInteger(p.minBytes) &&
      Number.isSafeInteger(p.maxBytes) &&
      typeof p.expiresAt === "string" &&
      !Number.isNaN(Date.parse(p.expiresAt));
    return ok ? (p as PostPolicy) : null;
  } catch {
    return null;
  }
}

/** S3 carries the checksum as base64 of the digest bytes; imgup's interfaces use lower-case hex. */
export const sha256HexToBase64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
export const SHA256_HEX = /^[0-9a-f]{64}$/;
