import { Readable } from "node:stream";
import { GetBucketCorsCommand, GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  type BucketCorsRule,
  type ByteRange,
  type ObjectHead,
  RangeNotSatisfiableError,
  type RangeRead,
} from "./object-store.ts";
import { isNotFound, s3ErrorCode, s3Status } from "./s3-errors.ts";

const via = (signal?: AbortSignal) => (signal ? { abortSignal: signal } : undefined);

/**
 * A ranged GetObject: S3 cuts the range itself, so only the asked bytes cross the network.
 * `toHead` is the driver's own mapping; the whole size comes from Content-Range.
 */
export async function getObjectRange(
  client: S3Client,
  bucket: string,
  fullKey: string,
  range: ByteRange,
  toHead: (out: HeadFields) => ObjectHead,
  signal?: AbortSignal,
): Promise<RangeRead | null> {
  const asked = "suffix" in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end ?? ""}`;
  try {
    const out = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: fullKey, Range: asked }),
      via(signal),
    );
    if (!(out.Body instanceof Readable)) throw new Error("S3 GetObject returned no stream body");
    const head = toHead(out);
    // "bytes 0-99/1234"; absent when the server ignored the range and sent it all.
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? "");
    if (!m) return { head, body: out.Body, start: 0, end: head.size - 1 };
    return { head: { ...head, size: Number(m[3]) }, body: out.Body, start: Number(m[1]), end: Number(m[2]) };
  } catch (err) {
    if (isNotFound(err)) return null;
    if (s3Status(err) === 416 || s3ErrorCode(err) === "InvalidRange") {
      const head = await client
        .send(new HeadObjectCommand({ Bucket: bucket, Key: fullKey }), via(signal))
        .catch((e) => (isNotFound(e) ? null : Promise.reject(e)));
      if (!head) return null;
      throw new RangeNotSatisfiableError(head.ContentLength ?? 0);
    }
    throw err;
  }
}

/** What GetObject answers that a head is made of. */
export interface HeadFields {
  ContentLength?: number;
  ContentType?: string;
  ETag?: string;
  LastModified?: Date;
  ChecksumSHA256?: string;
  ChecksumType?: string;
}

/** The bucket's CORS configuration; [] when it has none (NoSuchCORSConfiguration). */
export async function getBucketCorsRules(
  client: S3Client,
  bucket: string,
  signal?: AbortSignal,
): Promise<BucketCorsRule[]> {
  try {
    const out = await client.send(new GetBucketCorsCommand({ Bucket: bucket }), via(signal));
    return (out.CORSRules ?? []).map((r) => ({
      allowedOrigins: r.AllowedOrigins ?? [],
      allowedMethods: r.AllowedMethods ?? [],
      allowedHeaders: r.AllowedHeaders ?? [],
      exposeHeaders: r.ExposeHeaders ?? [],
      ...(r.MaxAgeSeconds !== undefined ? { maxAgeSeconds: r.MaxAgeSeconds } : {}),
    }));
  } catch (err) {
    if (s3ErrorCode(err) === "NoSuchCORSConfiguration") return [];
    throw err;
  }
}
