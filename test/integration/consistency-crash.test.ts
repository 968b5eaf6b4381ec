import { randomBytes } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imagePrefix, parseKey } from "../../src/domain/keys.ts";
import type { Maintenance } from "../../src/services/maintenance.ts";
import { Api } from "../support/api.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import {
  imageStatus,
  listAll,
  maintenanceFor,
  spawnWorker,
  type WorkerProcess,
} from "../support/maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const db = dbTargets().find((t) => t.name === "postgres");
const KILLS = 20;
const LEASE_MS = 1500;
const POOL = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real worker processes (`imgup serve --role worker`) on one PostgreSQL schema and one bucket,
 * each killed with SIGKILL while it processes an image: no shutdown hook, no lease release, no
 * cleanup. The lease lapsing is the only thing that hands the job over.
 */
describe.skipIf(!connection || !db)("a worker killed with SIGKILL mid-job (PostgreSQL + Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let alice: Api;
  let m: Maintenance;
  let env: Record<string, string>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    env = { ...s3Env(target, connection), IMGUP_JOB_LEASE_MS: String(LEASE_MS), IMGUP_JOB_POLL_MS: "50" };
    // The API only: every job runs in a child process.
    run = await startImgup(db.make(), { ...env, IMGUP_ROLE: "api" });
    alice = new Api(run.baseUrl, run.alice);
    m = maintenanceFor(run, { pendingGraceMs: 1000, processingGraceMs: 1000 });
  });

  afterAll(async () => {
    for (const w of workers) w.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await run?.stop();
    await bucket?.cleanup();
  });

  it(`${KILLS} kills in a row on different images: none stuck, none lost, no duplicate objects`, async () => {
    // Noise does not compress: decoding and resizing it keeps a worker busy for a good while.
    const raw = randomBytes(3000 * 2000 * 3);
    const bytes = await sharp(raw, { raw: { width: 3000, height: 2000, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    const ids: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const { intent, put } = await alice.uploadBytes(bytes, {
        filename: `c${i}.jpg`,
        contentType: "image/jpeg",
      });
      expect(put.status).toBe(200);
      ids.push(intent.image.id);
    }

    // A warm pool: a worker takes ~5 s to start, and the lapsed job of the last kill goes to one
    // of the others while the next image is being killed.
    const pool: WorkerProcess[] = [];
    const spawnOne = async () => {
      const w = await spawnWorker(run, { ...env, IMGUP_WORKER_CONCURRENCY: "1" });
      workers.push(w);
      pool.push(w);
    };
    await Promise.all(Array.from({ length: POOL }, spawnOne));

    const statusAtKill: string[] = [];
    // Kills land at a random moment up to this far into the job. A machine fast enough to finish a
    // job inside it halves it: that job counts as not killed, and most must still be.
    let windowMs = 250;
    const killedMidJob = new Set<string>();
    for (const [i, id] of ids.entries()) {
      const key = `process:${id}`;
      // The client's completion hint queues the job (there are no storage events here).
      expect((await alice.request("POST", `/v1/uploads/${id}/complete`)).status).toBe(202);
      const holder = await eventually(async () => pool.find((w) => w.started.has(key)), 60_000).catch(
        (err) => {
          throw new Error(`job ${i} never started: ${err}\n${pool.map((w) => w.output()).join("\n")}`);
        },
      );
      // Somewhere inside the job: before the row moved, while reading, decoding or writing variants.
      await sleep(Math.floor(Math.random() * windowMs));
      holder.kill("SIGKILL");
      expect(await holder.exited).toBeNull();
      pool.splice(pool.indexOf(holder), 1);
      const jobStatus = (await run.imgup.jobs.get(key))?.status;
      if (jobStatus === "running") {
        killedMidJob.add(id);
        statusAtKill.push((await imageStatus(run, id)) ?? "none");
      } else {
        expect(jobStatus, `job ${i} neither running nor done at the kill`).toBe("done");
        windowMs = Math.max(1, Math.floor(windowMs / 2));
      }
      await spawnOne();
    }
    expect(killedMidJob.size).toBeGreaterThan(KILLS / 2);
    // Most kills landed after the worker had moved the image to processing.
    expect(statusAtKill.filter((s) => s === "processing").length).toBeGreaterThan(killedMidJob.size / 2);
    // A kill can also land between the image's commit to ready and the job's own completion (two
    // statements): the job is still "running" and its retry finds the image ready. Never anything else.
    expect(statusAtKill.every((s) => s === "pending" || s === "processing" || s === "ready")).toBe(true);

    // The pool that is left finishes everything.
    for (const id of ids) {
      const settled = await alice.settled(id, 120_000).catch((err) => {
        throw new Error(`${id} did not settle: ${err}\n${pool.map((w) => w.output()).join("\n")}`);
      });
      expect(settled.status).toBe("ready");
    }
    for (const w of pool) w.kill("SIGTERM");
    await Promise.all(pool.map((w) => w.exited));

    const keys = await listAll(run);
    const variantCounts = new Set<number>();
    for (const id of ids) {
      const mine = keys.filter((k) => k.startsWith(imagePrefix(id)));
      const parsed = mine.map((k) => parseKey(k));
      expect(
        parsed.every((p) => p !== null),
        `unexpected keys under ${id}: ${mine}`,
      ).toBe(true);
      expect(parsed.filter((p) => p?.kind === "original")).toHaveLength(1);
      const variants = parsed.flatMap((p) => (p?.kind === "variant" ? [p.name] : []));
      expect(new Set(variants).size).toBe(variants.length);
      variantCounts.add(variants.length);
      const job = await run.imgup.jobs.get(`process:${id}`);
      expect(job?.status).toBe("done");
      // Killed once, then finished: two attempts, a third only if a handover raced a lease (one
      // fewer for a job that finished before its kill).
      const killed = killedMidJob.has(id) ? 1 : 0;
      expect(job?.attempts).toBeGreaterThanOrEqual(1 + killed);
      expect(job?.attempts).toBeLessThanOrEqual(2 + killed);
    }
    // Every image got the same set of eager variants, however often its job was interrupted.
    expect(variantCounts.size).toBe(1);
    expect(keys.every((k) => ids.some((id) => k.startsWith(imagePrefix(id))))).toBe(true);

    await sleep(LEASE_MS + 1000);
    const report = await m.reconciler.run({ dryRun: false, signal: new AbortController().signal });
    expect(report).toMatchObject({ pendingChecked: 0, stuckRequeued: 0, unclaimed: 0, errors: 0 });
    const doctor = await m.doctor.run();
    expect(doctor.disagreements).toEqual({
      readyWithoutOriginal: 0,
      objectWithoutRow: 0,
      objectOfDeadImage: 0,
      leftoverUpload: 0,
      pendingPastExpiry: 0,
      expiredMultipart: 0,
      processingPastLease: 0,
    });
    expect(doctor.readyRowsChecked).toBe(KILLS);
  }, 300_000);
});
