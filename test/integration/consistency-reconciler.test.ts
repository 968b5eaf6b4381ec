import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcile } from "../../src/cli-maintenance.ts";
import { uploadKey } from "../../src/domain/keys.ts";
import type { Maintenance } from "../../src/services/maintenance.ts";
import { Api, type MultipartUpload, putPart } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, finishedJob, type Running, startImgup } from "../support/harness.ts";
import { imageStatus, maintenanceFor } from "../support/maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const connection = s3TestConnection();
const db = dbTargets().find((t) => t.name === "postgres");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Storage events switched off entirely: the bucket notifies nobody, so only the reconciler can
 * tell imgup that uploads happened (and that others never will).
 */
describe.skipIf(!connection || !db)("reconciler with storage events off (PostgreSQL + Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let alice: Api;
  let m: Maintenance;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    // Role all: the real worker processes whatever the reconciler queues. Upload URLs live 4 s.
    run = await startImgup(db.make(), { ...s3Env(target, connection), IMGUP_UPLOAD_URL_TTL: "4" });
    alice = new Api(run.baseUrl, run.alice);
    m = maintenanceFor(run, { pendingGraceMs: 500, processingGraceMs: 500 });
  });

  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
  });

  it("after one pass every uploaded image is ready and every abandoned intent expired", async () => {
    const bytes = await makeImage("jpeg", 120, 90);
    const uploaded: string[] = [];
    const abandoned: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { intent, put } = await alice.uploadBytes(bytes, {
        filename: `u${i}.jpg`,
        contentType: "image/jpeg",
      });
      expect(put.status).toBe(200);
      uploaded.push(intent.image.id);
    }
    const form = await postUpload(alice, await makeImage("png", 40, 30));
    uploaded.push(form);
    for (let i = 0; i < 3; i++) {
      const intent = await alice.createIntent({
        filename: `a${i}.jpg`,
        contentType: "image/jpeg",
        size: bytes.length,
      });
      abandoned.push(intent.body.image.id);
    }
    // A multipart upload with one part sent and never completed: its parts must be aborted.
    const mp = await alice.createIntent({
      filename: "big.png",
      contentType: "image/png",
      size: 1000,
      method: "multipart",
    });
    const mpUpload = mp.body.upload as unknown as MultipartUpload;
    await putPart(mpUpload.parts[0]?.url ?? "", Buffer.alloc(1000, 1));
    abandoned.push(mp.body.image.id);

    // Nothing tells imgup about any of this.
    await sleep(1000);
    for (const id of [...uploaded, ...abandoned]) expect(await imageStatus(run, id)).toBe("pending");
    await sleep(4000); // past the 4 s URLs and the 0.5 s grace

    const dry = await m.reconciler.run({ dryRun: true, signal: new AbortController().signal });
    expect(dry).toMatchObject({
      dryRun: true,
      pendingChecked: 9,
      processingQueued: 5,
      expired: 4,
      multipartAborted: 1,
      errors: 0,
    });
    expect(dry.details.filter((d) => d.startsWith("would "))).toHaveLength(10);
    for (const id of [...uploaded, ...abandoned]) expect(await imageStatus(run, id)).toBe("pending");
    const mpKey = uploadKey(mp.body.image.id);
    expect(await run.imgup.store.listParts(mpKey, mpUpload.uploadId)).toHaveLength(1);

    const lines: string[] = [];
    expect(await reconcile(m, { dryRun: false }, (l) => lines.push(l))).toBe(0);
    expect(lines.join("\n")).toContain("5 were queued for processing");

    for (const id of uploaded) expect((await alice.settled(id, 20_000)).status).toBe("ready");
    for (const id of abandoned) expect(await imageStatus(run, id)).toBe("expired");
    await expect(run.imgup.store.listParts(mpKey, mpUpload.uploadId)).rejects.toMatchObject({
      code: "no_such_upload",
    });

    const again = await m.reconciler.run({ dryRun: false, signal: new AbortController().signal });
    expect(again).toMatchObject({ pendingChecked: 0, processingQueued: 0, expired: 0, stuckRequeued: 0 });
    expect((await m.doctor.run()).total).toBe(0);
  });

  it("re-queues a dead processing job and a processing image nobody works on", async () => {
    const bytes = await makeImage("webp", 50, 50);
    const a = (await alice.uploadBytes(bytes, { filename: "dead.webp", contentType: "image/webp" })).intent
      .image.id;
    const b = (await alice.uploadBytes(bytes, { filename: "stuck.webp", contentType: "image/webp" })).intent
      .image.id;
    const database = run.imgup.database.db;
    // a: its job died (e.g. the event came before the row committed, and retries ran out).
    await sql`insert into jobs (kind, key, payload, status, attempts, max_attempts, last_error)
      values ('process-image', ${`process:${a}`}, ${JSON.stringify({ imageId: a })}, 'dead', 5, 5, 'no row yet')`.execute(
      database,
    );
    // b: a worker moved it to processing an hour ago and its job vanished.
    await sql`update images set status = 'processing', updated_at = now() - interval '1 hour' where id = ${b}`.execute(
      database,
    );
    await sleep(5000); // past the 4 s URL of a

    const report = await m.reconciler.run({ dryRun: false, signal: new AbortController().signal });
    expect(report).toMatchObject({ processingQueued: 1, stuckRequeued: 1, gaveUp: 0, errors: 0 });
    expect((await alice.settled(a, 20_000)).status).toBe("ready");
    expect((await alice.settled(b, 20_000)).status).toBe("ready");
    expect(await finishedJob(run.imgup.jobs, `process:${a}`)).toMatchObject({ status: "done" });
    expect((await m.doctor.run()).total).toBe(0);
  });
});

async function postUpload(api: Api, bytes: Buffer): Promise<string> {
  const created = await api.createIntent({
    filename: "form.png",
    contentType: "image/png",
    size: bytes.length,
    method: "post",
  });
  const form = new FormData();
  for (const [k, v] of Object.entries(created.body.upload.fields ?? {})) form.append(k, v);
  form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/png" }), "form.png");
  const res = await fetch(created.body.upload.url, { method: "POST", body: form });
  if (res.status >= 300) throw new Error(`form upload failed: ${res.status} ${await res.text()}`);
  return created.body.image.id;
}
