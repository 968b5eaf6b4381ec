import { readFile } from "node:fs/promises";
import path from "node:path";
import {
  GetBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { type S3TestTarget, s3TestTarget } from "../support/s3-target.ts";

const RULE_FILE = path.resolve(import.meta.dirname, "../../deploy/s3-lifecycle.json");

describe("deploy/s3-lifecycle.json on a fresh bucket", () => {
  let target: S3TestTarget | null = null;
  beforeAll(async () => {
    target = await s3TestTarget();
  });
  afterAll(async () => {
    await target?.cleanup();
  });

  it("only aborts incomplete multipart uploads (the staging keys are promoted and deleted by imgup)", async () => {
    const { Rules } = JSON.parse(await readFile(RULE_FILE, "utf8")) as { Rules: LifecycleRule[] };
    expect(Rules).toHaveLength(1);
    const [rule] = Rules;
    expect(rule?.Status).toBe("Enabled");
    expect(rule?.AbortIncompleteMultipartUpload?.DaysAfterInitiation).toBeGreaterThanOrEqual(1);
    // Expiring objects would delete originals and variants: this rule must never carry one.
    expect(rule?.Expiration).toBeUndefined();
    expect(rule?.NoncurrentVersionExpiration).toBeUndefined();
  });

  it.skipIf(!process.env.TEST_S3_ENDPOINT && !process.env.CI)(
    "is accepted by PutBucketLifecycleConfiguration and reads back the same",
    async () => {
      if (!target) throw new Error("no S3 test target");
      const client = createS3Client(target.options);
      const { Rules } = JSON.parse(await readFile(RULE_FILE, "utf8")) as { Rules: LifecycleRule[] };
      await client.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: target.options.bucket,
          LifecycleConfiguration: { Rules },
        }),
      );
      const back = await client.send(
        new GetBucketLifecycleConfigurationCommand({ Bucket: target.options.bucket }),
      );
      expect(back.Rules).toHaveLength(1);
      expect(back.Rules?.[0]).toMatchObject({
        ID: Rules[0]?.ID,
        Status: "Enabled",
        AbortIncompleteMultipartUpload: {
          DaysAfterInitiation: Rules[0]?.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
        },
      });
      expect(back.Rules?.[0]?.Filter?.Prefix ?? "").toBe("");
    },
  );
});
