import { S3Client } from "@aws-sdk/client-s3";

/** How to reach an S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, R2). */
export interface S3ConnectionOptions {
  region: string;
  /** Omit for AWS S3; e.g. http://127.0.0.1:7480 for a local RGW. */
  endpoint?: string;
  /** Bucket in the path instead of the host name: needed by MinIO and RGW without wildcard DNS. */
  forcePathStyle: boolean;
  /** Both or neither; without them the AWS default credential chain applies. */
  accessKeyId?: string;
  secretAccessKey?: string;
}

export function createS3Client(opts: S3ConnectionOptions, endpoint = opts.endpoint): S3Client {
  if (Boolean(opts.accessKeyId) !== Boolean(opts.secretAccessKey)) {
    throw new Error("S3: accessKeyId and secretAccessKey go together");
  }
  return new S3Client({
    region: opts.region,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    ...(opts.accessKeyId && opts.secretAccessKey
      ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
      : {}),
    // The defaults ("WHEN_SUPPORTED") put a CRC32 of an empty body into presigned URLs, and send
    // streamed bodies with aws-chunked framing and trailers, which RGW and older MinIO refuse.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}
