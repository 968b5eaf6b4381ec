import { PutBucketCorsCommand } from "@aws-sdk/client-s3";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PART_SIZE, SCENARIOS, type ScenarioName } from "../../client/test-scenarios/index.ts";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { launchChromium } from "../support/browser.ts";
import { buildSdkTestBundle, inPage, openSdkTestPage } from "../support/client-sdk-browser.ts";
import { SCENARIO_ENV } from "../support/client-sdk-fixtures.ts";
import { dbTargets, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();

/** A fresh bucket that lets the page's origin upload (and read the ETag of each part), as README says. */
async function corsBucket(): Promise<S3TestTarget> {
  const bucket = await s3TestTarget();
  if (!bucket || !connection) throw new Error("no S3 target");
  const s3 = createS3Client(connection);
  await s3.send(
    new PutBucketCorsCommand({
      Bucket: bucket.options.bucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: ["*"],
            AllowedMethods: ["PUT", "POST", "GET"],
            AllowedHeaders: ["*"],
            ExposeHeaders: ["ETag"],
            MaxAgeSeconds: 600,
          },
        ],
      },
    }),
  );
  s3.destroy();
  return bucket;
}

/**
 * The SDK in Chromium: the same scenarios as in Node (test/integration/client-sdk.test.ts), from a
 * page on imgup's own origin (baseUrl ""), uploading with XHR to imgup's embedded storage and, with
 * TEST_S3_* set, cross-origin to a real S3 server; then a real Uppy with the adapter, as the
 * installed @uppy/aws-s3 drives it.
 */
const targets = [
  { name: "embedded storage", s3: false },
  ...(connection ? [{ name: "S3 (RGW)", s3: true }] : []),
];

describe.each(targets)("the client SDK in Chromium, $name", ({ s3 }) => {
  let run: Running;
  let bucket: S3TestTarget | null = null;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let tokens: { token: string; otherToken: string };

  beforeAll(async () => {
    const db = s3 ? dbTargets().at(-1) : dbTargets()[0];
    const kv = s3 ? kvEnvTargets().at(-1) : kvEnvTargets()[0];
    if (!db || !kv) throw new Error("no backend target");
    const bundle = await buildSdkTestBundle();
    if (s3 && connection) bucket = await corsBucket();
    run = await startImgup(db.make(), {
      ...SCENARIO_ENV,
      ...kv.make().env,
      ...(bucket && connection ? s3Env(bucket, connection) : {}),
    });
    tokens = { token: run.alice, otherToken: run.bob };
    browser = await launchChromium();
    // The page comes from Playwright, not from a loopback socket, so Chromium treats it as public
    // and asks before it talks to the loopback S3 server; a real bucket is public and never asks.
    if (s3) await browser.context.grantPermissions(["local-network-access"], { origin: run.baseUrl });
    page = await openSdkTestPage(browser.context, run.baseUrl, bundle);
  });

  afterAll(async () => {
    await browser?.close();
    await run?.stop();
    await bucket?.cleanup();
  });

  it.each(Object.keys(SCENARIOS) as ScenarioName[])("%s", async (name) => {
    expect(await inPage(page, "run", name, tokens)).toBeNull();
  });

  it("a real Uppy (@uppy/core + @uppy/aws-s3) uploads a small file with one PUT", async () => {
    const result = await inPage(page, "uppyUpload", tokens, "jpeg");
    expect(result.failed).toEqual([]);
    expect(result.multipart).toBe(false);
    expect(result.image).toMatchObject({ status: "ready", size: result.size });
    expect(result.key).toBe(result.image?.id);
    expect(result.progress).toBe(result.size);
  });

  it("a real Uppy uploads a large file in parts", async () => {
    const result = await inPage(page, "uppyUpload", tokens, "large");
    expect(result.failed).toEqual([]);
    expect(result.multipart).toBe(true);
    expect(result.size).toBeGreaterThan(3 * PART_SIZE);
    expect(result.image).toMatchObject({ status: "ready", size: result.size });
    expect(result.key).toBe(result.image?.id);
  });
});
