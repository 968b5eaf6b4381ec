import { randomBytes } from "node:crypto";
import { PutBucketCorsCommand } from "@aws-sdk/client-s3";
import { UPLOAD_KEY_SUFFIX } from "../../src/domain/keys.ts";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { configureBucketWebhook } from "../../src/storage/s3-notifications.ts";
import { dbTargets, kvEnvTargets, type Running, startImgup } from "./harness.ts";
import { s3Env, s3TestConnection, s3TestTarget } from "./s3-target.ts";

/**
 * imgup on a fresh RGW bucket (with PostgreSQL and Redis when configured) that a browser page can
 * upload to: the bucket allows any origin and exposes ETag (multipart needs it), and its
 * notifications reach imgup's webhook, so a plain PUT becomes ready without any client hint.
 */
export async function startImgupOnBrowserBucket(
  env: Record<string, string>,
  topicPrefix: string,
): Promise<{ run: Running; cleanup: () => Promise<void> }> {
  const connection = s3TestConnection();
  const bucket = await s3TestTarget();
  if (!bucket || !connection) throw new Error("no S3 target");
  const s3 = createS3Client(connection);
  const rule = { AllowedOrigins: ["*"], AllowedMethods: ["GET", "PUT", "POST"], AllowedHeaders: ["*"] };
  await s3.send(
    new PutBucketCorsCommand({
      Bucket: bucket.options.bucket,
      CORSConfiguration: { CORSRules: [{ ...rule, ExposeHeaders: ["ETag"], MaxAgeSeconds: 600 }] },
    }),
  );
  s3.destroy();
  const kv = last(kvEnvTargets()).make();
  const token = randomBytes(16).toString("hex");
  const run = await startImgup(last(dbTargets()).make(), {
    ...s3Env(bucket, connection),
    ...kv.env,
    ...env,
    IMGUP_EVENTS_TOKEN: token,
  });
  await configureBucketWebhook({
    ...connection,
    bucket: bucket.options.bucket,
    topicName: `${topicPrefix}-${randomBytes(4).toString("hex")}`,
    pushEndpoint: `${run.baseUrl}/v1/events/storage?token=${token}`,
    keySuffix: UPLOAD_KEY_SUFFIX,
  });
  return {
    run,
    cleanup: async () => {
      await run.stop();
      await bucket.cleanup();
      await kv.flush();
    },
  };
}

/** The most capable target: the real PostgreSQL / Redis when configured, else the embedded one. */
function last<T>(targets: T[]): T {
  const target = targets.at(-1);
  if (target === undefined) throw new Error("missing test target");
  return target;
}
