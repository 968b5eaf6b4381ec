import { rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { ERRORS } from "../domain/errors.ts";
import { type Dirs, type TempFile, validateKey, writeTemp } from "./local-files.ts";
import type { LocalMultipart } from "./local-multipart.ts";
import { parseClaims, sha256HexToBase64, verifyClaims } from "./local-signing.ts";

export type HeaderMap = Record<string, string | string[] | undefined>;

/** A PUT to `/storage/{key}` (plain object or multipart part); key is the decoded path, header names any case. */
export interface LocalUploadRequest {
  method: "PUT";
  key: string;
  query: Record<string, string | undefined>;
  headers: HeaderMap;
  body: Readable;
}

export interface PutUploadDeps {
  dirs: Dirs;
  secret: string;
  maxObjectBytes: number;
  now: () => number;
  exists: (key: string) => Promise<boolean>;
  multipart: LocalMultipart;
}

export type ReceivedPut =
  | { kind: "part"; etag: string }
  | {
      kind: "object";
      key: string;
      contentType: string;
      /** The signed checksum, verified against the body; null when none was signed. */
      sha256: string | null;
      /** The checksum header as sent, echoed in the response like S3 does. */
      checksumHeader: string | undefined;
      /** Verified, not yet published. */
      temp: TempFile;
    };

/**
 * Checks a presigned PUT in the order S3 would refuse it (signature, expiry, Content-Length,
 * Content-Type, checksum, size, existing key) and only then streams the body to a temp file, whose
 * length and checksum are checked before anything is published. Parts are stored directly.
 */
export async function receivePut(deps: PutUploadDeps, req: LocalUploadRequest): Promise<ReceivedPut> {
  if (req.method !== "PUT") throw ERRORS.validation("Only PUT uploads to this URL");
  const parsed = parseClaims(req.key, req.query);
  if (!parsed || !verifyClaims(deps.secret, parsed.claims, parsed.signature))
    throw ERRORS.signatureMismatch();
  const { claims } = parsed;
  if (deps.now() > claims.exp * 1000) throw ERRORS.urlExpired();
  validateKey(claims.key);
  const lengthHeader = header(req.headers, "content-length");
  if (lengthHeader === undefined) throw ERRORS.lengthRequired();
  if (!/^\d{1,15}$/.test(lengthHeader)) throw ERRORS.validation("Content-Length is not a number");
  const length = Number(lengthHeader);
  const checksum = header(req.headers, "x-amz-checksum-sha256");

  if (claims.kind === "part") {
    const { key, uploadId, partNumber } = claims;
    if (length !== claims.contentLength) throw ERRORS.contentLengthMismatch();
    return {
      kind: "part",
      etag: await deps.multipart.uploadPart(key, uploadId, partNumber, req.body, length, checksum),
    };
  }

  if (length !== claims.contentLength) throw ERRORS.contentLengthMismatch();
  if (header(req.headers, "content-type") !== claims.contentType) throw ERRORS.contentTypeMismatch();
  if (claims.sha256 && checksum !== sha256HexToBase64(claims.sha256)) {
    throw ERRORS.checksumMismatch("x-amz-checksum-sha256 differs from the signed checksum");
  }
  // The URL may have been signed under a larger limit than the one now configured.
  if (length > deps.maxObjectBytes) throw ERRORS.entityTooLarge();
  // Checked again, atomically, at publish time; this one only saves streaming a doomed body.
  if (await deps.exists(claims.key)) throw ERRORS.objectExists();

  const temp = await writeTemp(deps.dirs, req.body, {
    limit: length,
    overLimit: () => ERRORS.contentLengthMismatch("The body is longer than Content-Length"),
  });
  try {
    if (temp.size < length) throw ERRORS.incompleteBody();
    // An unsigned checksum header is still verified (S3 does), just not recorded as the object's hash.
    if (checksum !== undefined && sha256HexToBase64(temp.sha256) !== checksum)
      throw ERRORS.checksumMismatch();
  } catch (err) {
    await rm(temp.path, { force: true });
    throw err;
  }
  return {
    kind: "object",
    key: claims.key,
    contentType: claims.contentType,
    sha256: claims.sha256 ? temp.sha256 : null,
    checksumHeader: checksum,
    temp,
  };
}

export function header(headers: HeaderMap, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return (Array.isArray(v) ? v[0] : v)?.trim();
  }
  return undefined;
}
