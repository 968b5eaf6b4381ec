import type { AwsS3Options } from "@uppy/aws-s3";
import type { Body, Meta } from "@uppy/core";
import type { Static } from "typebox";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { createClient, type ImageView, type ImgupUppyOptions } from "../../client/index.ts";
import { SCENARIOS, type ScenarioContext, type ScenarioName } from "../../client/test-scenarios/index.ts";
import { ImageSchema } from "../../src/http/schemas.ts";
import { fixtureBlob, probeBlob, SCENARIO_ENV } from "../support/client-sdk-fixtures.ts";
import { dbTargets, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const realBackends = Boolean(process.env.DATABASE_URL || process.env.REDIS_URL || connection);

/** The embedded backends always; with the env set, PostgreSQL + Redis + RGW (whichever are there). */
const targets = [
  {
    name: "embedded (PGlite, in-process KV, local disk)",
    db: dbTargets()[0],
    kv: kvEnvTargets()[0],
    s3: false,
  },
  ...(realBackends
    ? [
        {
          name: "real backends (PostgreSQL, Redis, S3 when set)",
          db: dbTargets().at(-1),
          kv: kvEnvTargets().at(-1),
          s3: !!connection,
        },
      ]
    : []),
];

describe.each(targets)("the client SDK on $name", ({ db, kv, s3 }) => {
  let run: Running;
  let bucket: S3TestTarget | null = null;
  let ctx: ScenarioContext;

  beforeAll(async () => {
    if (!db || !kv) throw new Error("no backend target");
    if (s3 && connection) bucket = await s3TestTarget();
    run = await startImgup(db.make(), {
      ...SCENARIO_ENV,
      ...kv.make().env,
      ...(bucket && connection ? s3Env(bucket, connection) : {}),
    });
    ctx = {
      baseUrl: run.baseUrl,
      token: run.alice,
      otherToken: run.bob,
      file: fixtureBlob,
      probe: probeBlob,
      fetch: globalThis.fetch,
    };
  });

  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
  });

  it.each(Object.keys(SCENARIOS) as ScenarioName[])("%s", (name) => SCENARIOS[name](ctx), 60_000);

  it("refuses URLs of an image that is not ready: 409 image_not_ready", async () => {
    const client = createClient({ baseUrl: run.baseUrl, token: run.alice });
    const intent = await fetch(`${run.baseUrl}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${run.alice}`, "content-type": "application/json" },
      body: JSON.stringify({ filename: "later.png", contentType: "image/png", size: 100 }),
    });
    const { image } = (await intent.json()) as { image: ImageView };
    expect(image.status).toBe("pending");
    for (const what of ["original", "thumb", "w_10"]) {
      await expect(client.url(image, what), what).rejects.toMatchObject({
        status: 409,
        code: "image_not_ready",
      });
    }
  });

  it("returns images exactly as the server's schema describes them", async () => {
    const client = createClient({ baseUrl: run.baseUrl, token: run.alice, pollIntervalMs: 50 });
    const { image } = await client.upload(await fixtureBlob("png"));
    expect(Object.keys(image).sort()).toEqual(Object.keys(ImageSchema.properties).sort());
  });
});

// Compile-time checks (tsc fails on a mismatch): the SDK's ImageView is the server's schema, and
// the Uppy adapter's options are what the installed @uppy/aws-s3 takes.
expectTypeOf<ImageView>().toExtend<Static<typeof ImageSchema>>();
expectTypeOf<keyof ImageView>().toEqualTypeOf<keyof Static<typeof ImageSchema>>();
expectTypeOf<ImgupUppyOptions>().toExtend<AwsS3Options<Meta, Body>>();
