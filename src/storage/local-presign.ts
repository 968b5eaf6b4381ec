import { ERRORS } from "../domain/errors.ts";
import { validateKey } from "./local-files.ts";
import { isPartNumber, MAX_PART_NUMBER } from "./local-multipart.ts";
import {
  claimsQuery,
  encodePolicy,
  type PartClaims,
  type PutClaims,
  SHA256_HEX,
  sha256HexToBase64,
  signClaims,
  signPolicy,
} from "./local-signing.ts";
import type {
  PresignedRequest,
  PresignPartInput,
  PresignPostInput,
  PresignPutInput,
} from "./object-store.ts";

const MAX_EXPIRY_SECONDS = 7 * 24 * 3600;

/** What both drivers refuse before signing a PUT, so the embedded mode fails like production. */
export function checkPresignPut(input: PresignPutInput, maxObjectBytes: number): void {
  validateKey(input.key);
  checkContentType(input.contentType);
  if (!Number.isSafeInteger(input.contentLength) || input.contentLength < 0) {
    throw ERRORS.validation("contentLength must be a non-negative integer");
  }
  if (input.contentLength > maxObjectBytes) throw ERRORS.entityTooLarge();
  if (input.sha256 !== undefined && !SHA256_HEX.test(input.sha256)) {
    throw ERRORS.validation("sha256 must be 64 lower-case hex characters");
  }
}

/** Refuses what could not travel in an HTTP header or compare equal after the usual trimming. */
export function checkContentType(contentType: string): void {
  if (
    typeof contentType !== "string" ||
    !/^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/.test(contentType)
  ) {
    throw ERRORS.validation("contentType must be 1..255 printable ASCII characters");
  }
}

/**
 * Issues the local driver's upload URLs and form policies. Pure computation, like S3 presigning:
 * nothing is looked up, so a URL for a key that exists meanwhile is refused at upload time.
 */
export class LocalPresigner {
  constructor(
    private readonly baseUrl: string,
    private readonly secret: string,
    private readonly maxObjectBytes: number,
    private readonly now: () => number,
  ) {}

  put(input: PresignPutInput): PresignedRequest {
    checkPresignPut(input, this.maxObjectBytes);
    const claims: PutClaims = {
      kind: "put",
      key: input.key,
      exp: this.expiry(input.expiresInSeconds),
      contentType: input.contentType,
      contentLength: input.contentLength,
      sha256: input.sha256 ?? null,
    };
    const headers: Record<string, string> = { "Content-Type": input.contentType };
    if (input.sha256) headers["x-amz-checksum-sha256"] = sha256HexToBase64(input.sha256);
    const expiresAt = new Date(claims.exp * 1000);
    return { method: "PUT", url: this.signedUrl(claims), headers, fields: {}, expiresAt };
  }

  post(input: PresignPostInput): PresignedRequest {
    validateKey(input.key);
    checkContentType(input.contentType);
    const minBytes = input.minBytes ?? 0;
    const sizes = [minBytes, input.maxBytes];
    if (!sizes.every((n) => Number.isSafeInteger(n) && n >= 0) || minBytes > input.maxBytes) {
      throw ERRORS.validation("minBytes and maxBytes must be integers with 0 <= minBytes <= maxBytes");
    }
    if (input.maxBytes > this.maxObjectBytes) throw ERRORS.entityTooLarge();
    const expiresAt = new Date(this.expiry(input.expiresInSeconds) * 1000);
    const { key, contentType, maxBytes } = input;
    const policy = encodePolicy({ key, contentType, minBytes, maxBytes, expiresAt: expiresAt.toISOString() });
    const fields = { key, "Content-Type": contentType, policy, signature: signPolicy(this.secret, policy) };
    return { method: "POST", url: `${this.baseUrl}/storage-post`, headers: {}, fields, expiresAt };
  }

  part(input: PresignPartInput): string {
    validateKey(input.key);
    if (!isPartNumber(input.partNumber)) throw ERRORS.validation(`partNumber must be 1..${MAX_PART_NUMBER}`);
    const { key, uploadId, partNumber, contentLength } = input;
    if (!Number.isSafeInteger(contentLength) || contentLength < 1) {
      throw ERRORS.validation("contentLength must be a positive integer");
    }
    const exp = this.expiry(input.expiresInSeconds);
    const claims: PartClaims = { kind: "part", key, uploadId, partNumber, exp, contentLength };
    return this.signedUrl(claims);
  }

  private expiry(expiresInSeconds: number): number {
    if (
      !Number.isInteger(expiresInSeconds) ||
      expiresInSeconds < 1 ||
      expiresInSeconds > MAX_EXPIRY_SECONDS
    ) {
      throw ERRORS.validation(`expiresInSeconds must be an integer in 1..${MAX_EXPIRY_SECONDS}`);
    }
    // Whole seconds from a truncated now, like X-Amz-Date + X-Amz-Expires.
    return Math.floor(this.now() / 1000) + expiresInSeconds;
  }

  private signedUrl(claims: PutClaims | PartClaims): string {
    // Segments are encoded one by one so the path keeps its slashes and decodes back to the key.
    const path = claims.key.split("/").map(encodeURIComponent).join("/");
    return `${this.baseUrl}/storage/${path}?${claimsQuery(claims, signClaims(this.secret, claims))}`;
  }
}
