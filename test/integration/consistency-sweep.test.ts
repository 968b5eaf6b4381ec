import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { doctor, sweep } from "../../src/cli-maintenance.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { hashPrefix, imagePrefix, originalKey, uploadKey, variantKey } from "../../src/domain/keys.ts";
import type { Maintenance } from "../../src/services/maintenance.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, finishedJob, type Running, startImgup } from "../support/harness.ts";
import { listAll, maintenanceFor } from "../support/maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const db = dbTargets().find((t) => t.name === "postgres");
const GRACE_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const signal = () => new AbortController().signal;

/**
 * The sweep against a real bucket: orphans of every kind, some old and some planted a moment
 * before the sweep, next to live images, a pending upload and objects that are not imgup's.
 * Object ages come from the storage (LastModified), hence a grace period of seconds and waits.
 */
describe.skipIf(!connection || !db)("orphan sweep (PostgreSQL + Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let alice: Api;
  let m: Maintenance;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    run = await startImgup(db.make(), s3Env(target, connection));
    alice = new Api(run.baseUrl, run.alice);
    m = maintenanceFor(run, { sweepGraceMs: GRACE_MS });
  });

  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
  });

  const put = (key: string) =>
    run.imgup.store.put(key, Buffer.from(`planted ${key}`), { contentType: "application/octet-stream" });
  const ready = async (name: string) => {
    const { intent } = await alice.uploadBytes(await makeImage("png", 32, 32), {
      filename: name,
      contentType: "image/png",
    });
    await alice.request("POST", `/v1/uploads/${intent.image.id}/complete`);
    expect((await alice.settled(intent.image.id)).status).toBe("ready");
    return intent.image.id;
  };

  it("removes exactly the orphans older than the grace period, and nothing else", async () => {
    const database = run.imgup.database.db;
    // Live: two ready images (one with a variant), and an upload whose event was lost (pending).
    const live1 = await ready("live1.png");
    const live2 = await ready("live2.png");
    const liveVariant = variantKey(live1, "w_100", "webp");
    await put(liveVariant);
    // Its usage row, as the delivery path records a variant (the doctor compares usage with storage).
    await database
      .insertInto("image_variants")
      .values({
        image_id: live1,
        owner_id: "alice",
        key: liveVariant,
        bytes: Buffer.byteLength(`planted ${liveVariant}`),
      })
      .execute();
    const pending = (
      await alice.uploadBytes(await makeImage("jpeg"), { filename: "p.jpg", contentType: "image/jpeg" })
    ).intent.image.id;

    // Old orphans: objects without rows (original, variant, a stray file under an image prefix)...
    const ghosts = [newImageId(), newImageId()];
    for (const key of [
      originalKey(ghosts[0] as string),
      variantKey(ghosts[0] as string, "w_200", "avif"),
      originalKey(ghosts[1] as string),
      `${imagePrefix(ghosts[1] as string)}tmp-upload-part`,
    ]) {
      await put(key);
    }
    // ...rows deleted while their objects remain (the delete job never ran)...
    const gone = [await ready("gone1.png"), await ready("gone2.png")];
    await put(variantKey(gone[0] as string, "w_100", "webp"));
    await sql`update images set status = 'deleted', deleted_at = now() where id in (${sql.join(gone)})`.execute(
      database,
    );
    // ...a rejected image whose delete failed, and an expired intent whose upload came late.
    const text = Buffer.from("definitely not a png");
    const rejected = (await alice.uploadBytes(text, { filename: "r.png", contentType: "image/png" })).intent
      .image.id;
    await alice.request("POST", `/v1/uploads/${rejected}/complete`);
    expect((await alice.settled(rejected)).status).toBe("rejected");
    // The job deletes the rejected bytes just after the transition: plant ours once it is done.
    await finishedJob(run.imgup.jobs, `process:${rejected}`);
    await put(originalKey(rejected));
    const expired = (await alice.createIntent({ filename: "e.jpg", contentType: "image/jpeg", size: 100 }))
      .body.image.id;
    await sql`update images set status = 'expired' where id = ${expired}`.execute(database);
    await put(originalKey(expired));
    // ...and bytes sent again to a ready image's upload URL after its promotion.
    await put(uploadKey(live2));
    // Not imgup's: never deleted, whatever their age.
    const impostor = newImageId();
    const wrongPrefix = hashPrefix(impostor) === "0000" ? "0001" : "0000";
    const foreign = [
      "other-app/readme.txt",
      "abcd/not-an-id/original",
      `${wrongPrefix}/${impostor}/original`,
    ];
    for (const key of foreign) await put(key);
    // Everything under these prefixes is an orphan, eager variants of the deleted images included.
    const under = (ids: string[]) => (k: string) => ids.some((id) => k.startsWith(imagePrefix(id)));
    const planted = await listAll(run);
    const withoutRow = planted.filter(under(ghosts));
    const ofDead = planted.filter(under([...gone, rejected, expired]));
    const oldOrphans = [...withoutRow, ...ofDead, uploadKey(live2)];
    expect(withoutRow).toHaveLength(4);
    expect(ofDead.length).toBeGreaterThanOrEqual(5);

    await sleep(GRACE_MS + 1500);
    // Young orphans, planted right before the sweep: an upload may be landing before its row commits.
    const youngGhost = newImageId();
    const young = [
      originalKey(youngGhost),
      variantKey(gone[1] as string, "w_50", "webp"),
      `${imagePrefix(expired)}late`,
    ];
    for (const key of young) await put(key);

    const before = await listAll(run);
    const dry = await m.sweep.run({ dryRun: true, signal: signal() });
    expect(dry).toMatchObject({
      dryRun: true,
      foreign: 3,
      young: 3,
      withoutRow: 4,
      ofDeadImage: ofDead.length,
      leftoverUploads: 1,
      deleted: 0,
      errors: 0,
      complete: true,
    });
    expect(dry.details.map((d) => d.split(" ")[2]).sort()).toEqual([...oldOrphans].sort());
    expect((await listAll(run)).sort()).toEqual(before.sort());

    const diagnosed = await m.doctor.run();
    expect(diagnosed.disagreements).toMatchObject({
      objectWithoutRow: 4,
      objectOfDeadImage: ofDead.length,
      leftoverUpload: 1,
    });
    expect(diagnosed.notes).toEqual({ foreignObjects: 3, orphansWithinGrace: 3 });

    const lines: string[] = [];
    expect(await sweep(m, { dryRun: false }, (l) => lines.push(l))).toBe(0);
    const n = oldOrphans.length;
    expect(lines.join("\n")).toContain(
      `${n} orphans (4 without a row, ${n - 5} of expired/rejected/deleted images, 1 uploads left over by ready images), ${n} deleted`,
    );
    const after = await listAll(run);
    expect(after.sort()).toEqual(before.filter((k) => !oldOrphans.includes(k)).sort());
    for (const key of [...young, ...foreign, originalKey(live1), variantKey(live1, "w_100", "webp")]) {
      expect(after).toContain(key);
    }
    expect(after).toContain(originalKey(live2));
    expect(after).toContain(uploadKey(pending));

    // Nothing left to disagree on; the young orphans are not disagreements yet...
    const clean = await m.doctor.run();
    expect(clean.total).toBe(0);
    expect(clean.notes.orphansWithinGrace).toBe(3);
    // ...until they age past the grace period: then the doctor fails and the next sweep takes them.
    await sleep(GRACE_MS);
    const out: string[] = [];
    expect(await doctor(m, (l) => out.push(l))).toBe(1);
    expect(out.join("\n")).toContain("3 disagreements");
    expect((await m.sweep.run({ dryRun: false, signal: signal() })).deleted).toBe(3);
    out.length = 0;
    expect(await doctor(m, (l) => out.push(l)), out.join("\n")).toBe(0);
    expect(out.at(-1)).toBe("no disagreements");
    // The pending image is the reconciler's business, and its window has not lapsed yet.
    expect(await listAll(run)).toContain(uploadKey(pending));
  }, 120_000);

  it("a sweep cut short resumes from where it stopped", async () => {
    const ghosts = Array.from({ length: 5 }, () => originalKey(newImageId()));
    for (const key of ghosts) await put(key);
    await sleep(GRACE_MS + 1500);
    const { OrphanSweep } = await import("../../src/services/orphan-sweep.ts");
    const { MaintenanceRepository } = await import("../../src/db/maintenance-repository.ts");
    const small = new OrphanSweep({
      repo: new MaintenanceRepository(run.imgup.database.db, "process:"),
      store: run.imgup.store,
      kv: run.imgup.kv,
      logger: run.imgup.logger,
      settings: { graceMs: GRACE_MS, maxObjectsPerRun: 1 },
    });
    const total = (await listAll(run)).length;
    let runs = 0;
    let deleted = 0;
    for (;;) {
      const r = await small.run({ dryRun: false, signal: signal() });
      runs++;
      deleted += r.deleted;
      if (r.complete) break;
      expect(runs).toBeLessThan(total + 2);
    }
    expect(deleted).toBe(5);
    for (const key of ghosts) expect(await listAll(run)).not.toContain(key);
  });
});
