import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originalKey, uploadKey } from "../../src/domain/keys.ts";
import { S3ObjectStore } from "../../src/storage/s3.ts";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { maintenanceFor } from "../support/maintenance.ts";
import { runObjectStoreContract } from "../support/object-store-contract.ts";
import { httpUpload } from "../support/presigned-upload.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const pglite = dbTargets()[0];
if (!pglite) throw new Error("no database target");

describe.skipIf(!connection)("IMGUP_S3_PREFIX: deployments sharing one bucket", () => {
  // Every driver operation (presigned PUT/POST, multipart, list, deletePrefix) under a prefix.
  runObjectStoreContract(
    "s3 with a key prefix",
    async () => {
      const target = (await s3TestTarget()) as S3TestTarget;
      const store = new S3ObjectStore({ ...target.options, keyPrefix: "tenant-x/imgup" });
      return { store, upload: httpUpload, cleanup: target.cleanup };
    },
    { capabilities: { noOverwriteOnPresignedPut: false } },
  );

  describe("two deployments, one bucket", () => {
    let bucket: S3TestTarget;
    let a: Running;
    let b: Running;

    beforeAll(async () => {
      if (!connection) throw new Error("no S3");
      bucket = (await s3TestTarget()) as S3TestTarget;
      a = await startImgup(pglite.make(), { ...s3Env(bucket, connection), IMGUP_S3_PREFIX: "team-a" });
      b = await startImgup(pglite.make(), { ...s3Env(bucket, connection), IMGUP_S3_PREFIX: "team-b/prod" });
    });
    afterAll(async () => {
      await a?.stop();
      await b?.stop();
      await bucket?.cleanup();
    });

    const readyImage = async (run: Running) => {
      const api = new Api(run.baseUrl, run.alice);
      const { intent } = await api.uploadBytes(await makeImage("png", 32, 32), {
        filename: "p.png",
        contentType: "image/png",
      });
      await api.request("POST", `/v1/uploads/${intent.image.id}/complete`);
      expect((await api.settled(intent.image.id)).status).toBe("ready");
      return intent.image.id as string;
    };

    it("keeps each deployment's objects under its prefix, and one's sweep never touches the other's", async () => {
      const idA = await readyImage(a);
      const idB = await readyImage(b);

      const raw = createS3Client(connection as NonNullable<typeof connection>);
      const listed = await raw.send(new ListObjectsV2Command({ Bucket: bucket.options.bucket }));
      raw.destroy();
      const keys = (listed.Contents ?? []).map((o) => o.Key);
      expect(keys).toContain(`team-a/${originalKey(idA)}`);
      expect(keys).toContain(`team-b/prod/${originalKey(idB)}`);
      expect(keys.every((k) => k?.startsWith("team-a/") || k?.startsWith("team-b/prod/"))).toBe(true);

      // From A, B's image has no row: without the prefix a sweep with no grace would delete it.
      const sweep = maintenanceFor(a, { sweepGraceMs: 0 }).sweep;
      const report = await sweep.run({ dryRun: false, signal: new AbortController().signal });
      expect(report.withoutRow).toBe(0);
      expect(report.deleted).toBe(0);
      expect(report.listed).toBeGreaterThan(0);
      expect(await b.imgup.store.head(originalKey(idB))).not.toBeNull();
      expect((await fetch(`${b.baseUrl}/i/${idB}/original`)).status).toBe(200);
      expect((await fetch(`${a.baseUrl}/i/${idA}/original`)).status).toBe(200);
    });

    it("ignores storage events for keys outside its prefix", async () => {
      const id = await readyImage(b);
      const event = (key: string) => ({ key, size: 1, etag: null, source: "test" });
      expect(await a.imgup.storageEvents.objectCreated(event(`team-b/prod/${uploadKey(id)}`))).toBe(
        "ignored",
      );
      expect(await a.imgup.storageEvents.objectCreated(event(uploadKey(id)))).toBe("ignored");
      // B knows its own key (the job was done already: a duplicate, not ignored).
      expect(await b.imgup.storageEvents.objectCreated(event(`team-b/prod/${uploadKey(id)}`))).toBe(
        "duplicate",
      );
    });
  });
});
