import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { doctor, purge } from "../../src/cli-maintenance.ts";
import { MaintenanceRepository } from "../../src/db/maintenance-repository.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { imagePrefix, originalKey, uploadKey, variantKey } from "../../src/domain/keys.ts";
import type { JobRunner } from "../../src/jobs/job-runner.ts";
import { forEachLimit } from "../../src/jobs/scheduler.ts";
import type { Maintenance } from "../../src/services/maintenance.ts";
import { OwnerPurgeService } from "../../src/services/owner-purge.ts";
import { Api, type MultipartUpload, putPart } from "../support/api.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { listAll, maintenanceFor, maintenanceWorker } from "../support/maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const db = dbTargets().find((t) => t.name === "postgres");
const PURGED = 500;
const KEPT = 20;

/** User withdrawal: every image of one owner goes, rows and objects; nobody else's does. */
describe.skipIf(!connection || !db)("owner purge (PostgreSQL + Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let m: Maintenance;
  let worker: JobRunner;
  let admin: Api;
  let carol: Api;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    // The API only: the maintenance worker below is the one that runs the deletion jobs.
    run = await startImgup(db.make(), { ...s3Env(target, connection), IMGUP_ROLE: "api" });
    m = maintenanceFor(run);
    admin = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key);
    carol = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "carol" })).key);
  });

  afterAll(async () => {
    await worker?.stop(5000);
    await run?.stop();
    await bucket?.cleanup();
  });

  /** Ready rows and their objects (an original and a variant each), without running sharp 520 times. */
  async function seed(ownerId: string, count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, () => newImageId());
    const now = new Date();
    for (let i = 0; i < ids.length; i += 100) {
      await run.imgup.database.db
        .insertInto("images")
        .values(
          ids.slice(i, i + 100).map((id) => ({
            id,
            owner_id: ownerId,
            status: "ready",
            visibility: "public",
            filename: "seed.png",
            object_key: originalKey(id),
            upload_method: "put",
            declared_content_type: "image/png",
            declared_size: 4,
            content_type: "image/png",
            size: 4,
            width: 1,
            height: 1,
            format: "png",
            upload_expires_at: now,
            ready_at: now,
          })),
        )
        .execute();
    }
    const body = Buffer.from("seed");
    await forEachLimit(ids, 16, async (id) => {
      await run.imgup.store.put(originalKey(id), body, { contentType: "image/png" });
      await run.imgup.store.put(variantKey(id, "w_64", "webp"), body, { contentType: "image/webp" });
    });
    // The variants' usage rows, as the delivery path records them (the doctor compares the two).
    for (let i = 0; i < ids.length; i += 100) {
      await run.imgup.database.db
        .insertInto("image_variants")
        .values(
          ids.slice(i, i + 100).map((id) => ({
            image_id: id,
            owner_id: ownerId,
            key: variantKey(id, "w_64", "webp"),
            bytes: body.length,
          })),
        )
        .execute();
    }
    return ids;
  }

  const rowsOf = async (ownerId: string) =>
    (await run.imgup.database.db.selectFrom("images").select("id").where("owner_id", "=", ownerId).execute())
      .length;

  it(`purges an owner with ${PURGED} images: no row and no object of theirs left, others untouched`, async () => {
    const carolIds = await seed("carol", PURGED);
    const daveIds = await seed("dave", KEPT);
    // One of carol's uploads is an unfinished multipart upload: its parts must go too.
    const mp = await carol.createIntent({
      filename: "big.png",
      contentType: "image/png",
      size: 1000,
      method: "multipart",
    });
    const mpUpload = mp.body.upload as unknown as MultipartUpload;
    await putPart(mpUpload.parts[0]?.url ?? "", Buffer.alloc(1000, 7));
    carolIds.push(mp.body.image.id);
    const daveKeys = (await listAll(run)).filter((k) => daveIds.some((id) => k.startsWith(imagePrefix(id))));
    expect(daveKeys).toHaveLength(2 * KEPT);

    // Only an admin may, and the others learn nothing else.
    const denied = await new Api(run.baseUrl, carol.key).request("DELETE", "/v1/owners/carol/images");
    expect(denied.status).toBe(403);
    expect(denied.headers.get("content-type")).toContain("application/problem+json");
    expect(denied.body).toMatchObject({ code: "forbidden", status: 403 });
    expect((await new Api(run.baseUrl).request("DELETE", "/v1/owners/carol/images")).status).toBe(401);
    expect((await admin.request("DELETE", "/v1/owners/no%20spaces/images")).status).toBe(400);

    const res = await admin.request("DELETE", "/v1/owners/carol/images");
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ ownerId: "carol", images: PURGED + 1, markedDeleted: PURGED + 1 });
    // Hidden at once, before any object is gone.
    expect((await carol.getImage(carolIds[0] as string)).status).toBe(404);
    expect((await carol.request<{ items: unknown[] }>("GET", "/v1/images")).body.items).toEqual([]);

    // A purge job that dies after its first batch leaves the rest for the next attempt.
    const repo = new MaintenanceRepository(run.imgup.database.db, "process:");
    const stop = new AbortController();
    const interrupted = new OwnerPurgeService({
      repo,
      store: run.imgup.store,
      jobs: run.imgup.jobs,
      logger: pino(
        { level: "info" },
        new Writable({
          write(chunk, _enc, done) {
            if (String(chunk).includes("owner purge progress")) stop.abort(new Error("crash"));
            done();
          },
        }),
      ),
      settings: { batchSize: 100 },
    });
    await expect(interrupted.purgeObjects("carol", stop.signal)).rejects.toThrow("crash");
    const left = await rowsOf("carol");
    expect(left).toBe(PURGED + 1 - 100);

    // The queued job (handled by a worker) finishes what is left.
    worker = maintenanceWorker(run, m);
    await eventually(async () => (await run.imgup.jobs.get("purge-owner:carol"))?.status === "done", 60_000);
    expect(await rowsOf("carol")).toBe(0);
    const keys = await listAll(run);
    expect(keys.filter((k) => carolIds.some((id) => k.startsWith(imagePrefix(id))))).toEqual([]);
    await expect(
      run.imgup.store.listParts(uploadKey(mp.body.image.id), mpUpload.uploadId),
    ).rejects.toMatchObject({
      code: "no_such_upload",
    });

    // Dave is untouched.
    expect(await rowsOf("dave")).toBe(KEPT);
    expect(keys.filter((k) => daveKeys.includes(k)).sort()).toEqual(daveKeys.sort());

    // Repeating the purge finds nothing to do.
    const again = await admin.request("DELETE", "/v1/owners/carol/images");
    expect(again.body).toEqual({ ownerId: "carol", images: 0, markedDeleted: 0 });

    // The CLI's dry run changes nothing; the doctor (and `imgup doctor`) finds nothing to report.
    const out: string[] = [];
    expect(await purge(m, { ownerId: "dave", dryRun: true }, (l) => out.push(l))).toBe(0);
    expect(out).toEqual([`purge (dry run): would delete ${KEPT} images of owner dave, objects and rows`]);
    expect(await rowsOf("dave")).toBe(KEPT);
    expect((await m.doctor.run()).total).toBe(0);
    out.length = 0;
    expect(await doctor(m, (l) => out.push(l)), out.join("\n")).toBe(0);
    expect(out.at(-1)).toBe("no disagreements");
  }, 180_000);

  it("a single DELETE /v1/images/{id} removes the original and every variant", async () => {
    const [id] = await seed("erin", 1);
    const erin = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "erin" })).key);
    await run.imgup.store.put(variantKey(id as string, "w_300,h_200", "avif"), Buffer.from("v"), {
      contentType: "image/avif",
    });
    expect(await listAll(run, imagePrefix(id as string))).toHaveLength(3);
    expect((await erin.request("DELETE", `/v1/images/${id}`)).status).toBe(204);
    await eventually(async () => (await listAll(run, imagePrefix(id as string))).length === 0, 20_000);
    expect((await m.doctor.run()).total).toBe(0);
  });
});
