import { randomBytes } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { S3ObjectStoreOptions } from "../../src/storage/s3.ts";
import { createS3Client, type S3ConnectionOptions } from "../../src/storage/s3-client.ts";
import { missingBackend } from "./backends.ts";

/**
 * The S3 server the integration tests run against, from TEST_S3_ENDPOINT, TEST_S3_REGION,
 * TEST_S3_ACCESS_KEY_ID, TEST_S3_SECRET_ACCESS_KEY (what `scripts/local-s3.sh env` prints).
 * null when TEST_S3_ENDPOINT is unset (shown as a skipped test; an error in CI: see backends.ts).
 */
export function s3TestConnection(): S3ConnectionOptions | null {
  const endpoint = process.env.TEST_S3_ENDPOINT;
  if (!endpoint) {
    missingBackend("s3", "TEST_S3_ENDPOINT");
    return null;
  }
  const accessKeyId = process.env.TEST_S3_ACCESS_KEY_ID;
  const secretAccessKey = process.env.TEST_S3_SECRET_ACCESS_KEY;
  return {
    endpoint,
    region: process.env.TEST_S3_REGION || "us-east-1",
    forcePathStyle: true,
    ...(accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : {}),
  };
}

export interface S3TestTarget {
  options: S3ObjectStoreOptions;
  /** Deletes every object and multipart upload in the bucket, then the bucket. */
  cleanup: () => Promise<void>;
}

/** A fresh bucket (imgup-t-<hex>) on the test S3 server, or null when there is none. */
export async function s3TestTarget(
  overrides: Partial<S3ObjectStoreOptions> = {},
): Promise<S3TestTarget | null> {
  const connection = s3TestConnection();
  if (!connection) return null;
  const bucket = `imgup-t-${randomBytes(6).toString("hex")}`;
  const client = createS3Client(connection);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const options: S3ObjectStoreOptions = {
    ...connection,
    bucket,
    maxObjectBytes: 64 * 1024 * 1024,
    ...overrides,
  };
  const cleanup = async () => {
    try {
      await emptyBucket(client, bucket);
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
  };
  return { options, cleanup };
}

async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
      );
    }
    if (!uploads.IsTruncated) break;
  }
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const objects = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (objects.length === 0) break;
    await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
    );
  }
}

/** imgup's S3 configuration for a test bucket, with no storage events (no webhook, no SQS). */
export function s3Env(bucket: S3TestTarget, connection: S3ConnectionOptions): Record<string, string> {
  return {
    IMGUP_STORAGE: "s3",
    S3_BUCKET: bucket.options.bucket,
    S3_ENDPOINT: connection.endpoint ?? "",
    S3_REGION: connection.region,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: connection.accessKeyId ?? "",
    S3_SECRET_ACCESS_KEY: connection.secretAccessKey ?? "",
  };
}
