import { GetObjectCommand, PutObjectCommand, type S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { ERRORS } from "../domain/errors.ts";
import { validateKey } from "./local-files.ts";
import { checkContentType, checkPresignPut } from "./local-presign.ts";
import type {
  PresignedRequest,
  PresignPartInput,
  PresignPostInput,
  PresignPutInput,
} from "./object-store.ts";
import { sha256HexToBase64 } from "./s3-body.ts";

const MAX_EXPIRY_SECONDS = 7 * 24 * 3600;
const MAX_PART_NUMBER = 10_000;

/**
 * Presigned requests whose claims the storage checks: the PUT signs Content-Type, Content-Length,
 * If-None-Match and the checksum (verified by AWS S3, ignored by Ceph RGW); the POST policy pins
 * the key, the type and a size range. Pure computation, nothing is sent.
 */
export class S3Presigner {
  constructor(
    readonly client: S3Client,
    private readonly bucket: string,
    private readonly maxObjectBytes: number,
  ) {}

  async put(input: PresignPutInput): Promise<PresignedRequest> {
    checkPresignPut(input, this.maxObjectBytes);
    const { signingDate, expiresIn, expiresAt } = expiry(input.expiresInSeconds);
    const checksum = input.sha256 ? sha256HexToBase64(input.sha256) : undefined;
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: input.key,
      ContentType: input.contentType,
      ContentLength: input.contentLength,
      // Signed, so the URL cannot replace an object once it exists: without it a client could
      // upload a valid image, let it be processed, then swap the bytes while the URL is still valid.
      IfNoneMatch: "*",
      ...(checksum ? { ChecksumSHA256: checksum } : {}),
    });
    const url = await getSignedUrl(this.client, command, {
      expiresIn,
      signingDate,
      // The presigner leaves Content-Type unsigned unless told; Content-Length and If-None-Match
      // are signed because they are request headers.
      signableHeaders: new Set(["content-type", "content-length", "if-none-match"]),
      // Kept a header (not hoisted into the query) so the storage checks it against the body.
      unhoistableHeaders: new Set(["x-amz-checksum-sha256"]),
    });
    // Content-Length is left out: clients (browsers above all) set it from the body.
    const headers: Record<string, string> = { "Content-Type": input.contentType, "If-None-Match": "*" };
    if (checksum) headers["x-amz-checksum-sha256"] = checksum;
    return { method: "PUT", url, headers, fields: {}, expiresAt };
  }

  async post(input: PresignPostInput): Promise<PresignedRequest> {
    validateKey(input.key);
    checkContentType(input.contentType);
    const minBytes = input.minBytes ?? 1;
    const sizes = [minBytes, input.maxBytes];
    if (!sizes.every((n) => Number.isSafeInteger(n) && n >= 0) || minBytes > input.maxBytes) {
      throw ERRORS.validation("minBytes and maxBytes must be integers with 0 <= minBytes <= maxBytes");
    }
    if (input.maxBytes > this.maxObjectBytes) throw ERRORS.entityTooLarge();
    const { expiresIn, expiresAt } = expiry(input.expiresInSeconds);
    // createPresignedPost adds the exact-key and bucket conditions itself.
    const { url, fields } = await createPresignedPost(this.client, {
      Bucket: this.bucket,
      Key: input.key,
      Conditions: [
        ["content-length-range", minBytes, input.maxBytes],
        ["eq", "$Content-Type", input.contentType],
      ],
      Fields: { "Content-Type": input.contentType },
      Expires: expiresIn,
    });
    return { method: "POST", url, headers: {}, fields, expiresAt };
  }

  async part(input: PresignPartInput): Promise<string> {
    validateKey(input.key);
    const { partNumber } = input;
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
      throw ERRORS.validation(`partNumber must be 1..${MAX_PART_NUMBER}`);
    }
    if (!Number.isSafeInteger(input.contentLength) || input.contentLength < 1) {
      throw ERRORS.validation("contentLength must be a positive integer");
    }
    const { signingDate, expiresIn } = expiry(input.expiresInSeconds);
    const command = new UploadPartCommand({
      Bucket: this.bucket,
      Key: input.key,
      UploadId: input.uploadId,
      PartNumber: partNumber,
      ContentLength: input.contentLength,
    });
    // Content-Length signed: a part URL of a 6 MB intent cannot store a 60 MB part.
    return getSignedUrl(this.client, command, {
      expiresIn,
      signingDate,
      signableHeaders: new Set(["content-length"]),
    });
  }
}

/** A GET of one object that anyone holding the URL may make until it expires (delivery redirects). */
export async function presignGetUrl(
  client: S3Client,
  bucket: string,
  key: string,
  expiresInSeconds: number,
): Promise<string> {
  validateKey(key);
  const { signingDate, expiresIn } = expiry(expiresInSeconds);
  return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn, signingDate });
}

/** Whole seconds from a truncated now, so expiresAt is exactly what X-Amz-Date + X-Amz-Expires say. */
function expiry(expiresInSeconds: number) {
  if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_EXPIRY_SECONDS) {
    throw ERRORS.validation(`expiresInSeconds must be an integer in 1..${MAX_EXPIRY_SECONDS}`);
  }
  const signingDate = new Date(Math.floor(Date.now() / 1000) * 1000);
  const expiresAt = new Date(signingDate.getTime() + expiresInSeconds * 1000);
  return { signingDate, expiresIn: expiresInSeconds, expiresAt };
}
