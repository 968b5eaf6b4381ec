import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { purge } from "../../src/cli-maintenance.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { imagePrefix, variantKey } from "../../src/domain/keys.ts";
import { JobRunner } from "../../src/jobs/job-runner.ts";
import type { Maintenance } from "../../src/services/maintenance.ts";
import { PROCESS_IMAGE } from "../../src/services/storage-events.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { imageStatus, listAll, maintenanceFor } from "../support/maintenance.ts";

const pglite = dbTargets().find((t) => t.name === "pglite");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const signal = () => new AbortController().signal;

/**
 * The consistency jobs in embedded mode (PGlite, local-disk storage), which every `npm test`
 * runs: the same queries and the same listing order as on PostgreSQL and S3.
 */
describe.skipIf(!pglite)("consistency jobs in embedded mode (PGlite + local storage)", () => {
  let run: Running;
  let alice: Api;
  let m: Maintenance;

  beforeAll(async () => {
    if (!pglite) throw new Error("no PGlite target");
    // The API only, so an upload's job waits in the queue until the test drops it ("lost event").
    run = await startImgup(pglite.make(), { IMGUP_ROLE: "api", IMGUP_UPLOAD_URL_TTL: "3" });
    alice = new Api(run.baseUrl, run.alice);
    m = maintenanceFor(run, { pendingGraceMs: 0, sweepGraceMs: 1500 });
  });

  afterAll(async () => {
    await run?.stop();
  });

  it("doctor finds the disagreements, reconcile and sweep repair them, purge leaves nothing", async () => {
    const database = run.imgup.database.db;
    const bytes = await makeImage("png", 30, 20);
    const uploaded: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { intent, put } = await alice.uploadBytes(bytes, {
        filename: `e${i}.png`,
        contentType: "image/png",
      });
      expect(put.status).toBe(200);
      uploaded.push(intent.image.id);
    }
    await sql`delete from jobs where kind = ${PROCESS_IMAGE}`.execute(database);
    const abandoned = (await alice.createIntent({ filename: "a.png", contentType: "image/png", size: 10 }))
      .body.image.id;
    const mp = (
      await alice.createIntent({ filename: "m.png", contentType: "image/png", size: 10, method: "multipart" })
    ).body.image.id;
    const ghost = newImageId();
    for (const key of [
      variantKey(ghost, "w_10", "webp"),
      `${imagePrefix(ghost)}stray`,
      "elsewhere/file.bin",
    ]) {
      await run.imgup.store.put(key, Buffer.from("x"), { contentType: "application/octet-stream" });
    }
    // Past the upload URLs' 3 s lifetime (and the sweep's 1.5 s grace).
    await sleep(3200);

    const before = await m.doctor.run();
    expect(before.disagreements).toEqual({
      readyWithoutOriginal: 0,
      objectWithoutRow: 2,
      objectOfDeadImage: 0,
      leftoverUpload: 0,
      pendingPastExpiry: 3,
      expiredMultipart: 1,
      processingPastLease: 0,
    });
    expect(before.notes.foreignObjects).toBe(1);

    const reconciled = await m.reconciler.run({ dryRun: false, signal: signal() });
    expect(reconciled).toMatchObject({ processingQueued: 2, expired: 2, multipartAborted: 1, errors: 0 });
    expect(await imageStatus(run, abandoned)).toBe("expired");
    expect(await imageStatus(run, mp)).toBe("expired");
    const worker = new JobRunner({
      queue: run.imgup.jobs,
      handlers: {
        [PROCESS_IMAGE]: async (job, s) => {
          await run.imgup.processing.process(String(job.payload.imageId), s);
        },
      },
      concurrency: 2,
      leaseMs: 10_000,
      pollIntervalMs: 20,
      logger: pino({ level: "silent" }),
    });
    worker.start();
    try {
      for (const id of uploaded) expect((await alice.settled(id)).status).toBe("ready");
    } finally {
      await worker.stop(5000);
    }

    const swept = await m.sweep.run({ dryRun: false, signal: signal() });
    expect(swept).toMatchObject({ withoutRow: 2, deleted: 2, foreign: 1, complete: true });
    expect((await m.doctor.run()).total).toBe(0);

    const out: string[] = [];
    expect(await purge(m, { ownerId: "alice", dryRun: false }, (l) => out.push(l))).toBe(0);
    expect(out.at(-1)).toBe("purge: 4 images removed with their objects");
    expect(await listAll(run)).toEqual(["elsewhere/file.bin"]);
    const rows = await database.selectFrom("images").select("id").where("owner_id", "=", "alice").execute();
    expect(rows).toEqual([]);
    expect((await m.doctor.run()).total).toBe(0);
  });
});
