// Creates the development bucket of scripts/local-s3.sh and its CORS rules (no aws-cli on the
// machines this runs on). Reads the TEST_S3_* variables the shell script exports; idempotent.
import { CreateBucketCommand, PutBucketCorsCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const bucket = env("TEST_S3_BUCKET");
const client = new S3Client({
  endpoint: env("TEST_S3_ENDPOINT"),
  region: env("TEST_S3_REGION"),
  forcePathStyle: true,
  credentials: {
    accessKeyId: env("TEST_S3_ACCESS_KEY_ID"),
    secretAccessKey: env("TEST_S3_SECRET_ACCESS_KEY"),
  },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});

try {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
} catch (err) {
  if (!(err instanceof S3ServiceException && err.name === "BucketAlreadyOwnedByYou")) throw err;
}

// Browsers upload straight to the bucket from the demo page: any origin, the signed headers
// (Content-Type, x-amz-checksum-sha256, …) allowed, ETag readable for multipart completion.
await client.send(
  new PutBucketCorsCommand({
    Bucket: bucket,
    CORSConfiguration: {
      CORSRules: [
        {
          AllowedOrigins: ["*"],
          AllowedMethods: ["GET", "PUT", "POST", "HEAD"],
          AllowedHeaders: ["*"],
          ExposeHeaders: ["ETag"],
          MaxAgeSeconds: 3600,
        },
      ],
    },
  }),
);
client.destroy();
console.log(`bucket ${bucket} ready`);
