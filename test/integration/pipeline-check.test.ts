import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadKey } from "../../src/domain/keys.ts";
import { doctorExitCode, printDoctorReport } from "../../src/services/doctor.ts";
import type { LocalObjectStore } from "../../src/storage/local.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";

const target = dbTargets().at(-1);
const OPS_TOKEN = "ops-token-for-the-pipeline-check-test";

/**
 * Events not arriving: an upload's object is in the storage, its image still pending with no job.
 * The scheduler's pipeline check flags it (gauges on every instance, a log line), the doctor lists
 * it; an upload whose event came, and an intent with no object yet, are not flagged.
 */
describe.skipIf(!target)("pipeline check: uploads whose storage event never came", () => {
  let run: Running;

  beforeAll(async () => {
    run = await startImgup((target as NonNullable<typeof target>).make(), {
      IMGUP_EVENT_STALL_MS: "1000",
      // With DATABASE_URL the API port's /metrics needs the ops token (issue 13).
      IMGUP_OPS_TOKEN: OPS_TOKEN,
      IMGUP_PIPELINE_CHECK_INTERVAL_MS: "1000",
    });
    // A storage that announces nothing: the event path is "broken".
    (run.imgup.store as LocalObjectStore).setObjectCreatedListener(undefined);
  });
  afterAll(async () => run?.stop());

  it("flags the stranded upload only, in the gauges and in the doctor", async () => {
    const alice = new Api(run.baseUrl, run.alice);
    const png = await makeImage("png", 8, 8);
    const intent = async () =>
      (await alice.createIntent({ filename: "p.png", contentType: "image/png", size: png.length })).body.image
        .id;
    const stranded = await intent();
    const announced = await intent();
    await intent(); // no object yet: the client has not uploaded
    await run.imgup.store.put(uploadKey(stranded), png, { contentType: "image/png" });
    await run.imgup.store.put(uploadKey(announced), png, { contentType: "image/png" });
    expect(
      await run.imgup.storageEvents.objectCreated({
        key: uploadKey(announced),
        size: png.length,
        etag: null,
        source: "test",
      }),
    ).toBe("enqueued");

    // The scheduler's check publishes once the object is past the stall threshold.
    const scrape = async () =>
      (await fetch(`${run.baseUrl}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } })).text();
    const text = await eventually(async () => {
      const body = await scrape();
      return /^imgup_images_pending_with_object 1$/m.test(body) ? body : null;
    }, 120_000);
    const oldest = Number(/^imgup_images_pending_with_object_oldest_seconds (\S+)$/m.exec(text)?.[1]);
    expect(oldest).toBeGreaterThanOrEqual(1);

    const report = await run.imgup.maintenance.doctor.run();
    expect(report.pipeline).toMatchObject({ pendingWithObject: 1, samples: [stranded] });
    expect(doctorExitCode(report)).toBe(1);
    const printed: string[] = [];
    printDoctorReport(report, (line) => printed.push(line));
    expect(printed.join("\n")).toMatch(/1 uploads in the storage still wait for their event/);
    expect(printed.join("\n")).toContain(`e.g. image ${stranded}`);

    // Its event arrives: the next check finds nothing.
    await run.imgup.storageEvents.objectCreated({
      key: uploadKey(stranded),
      size: png.length,
      etag: null,
      source: "test",
    });
    await eventually(async () => /^imgup_images_pending_with_object 0$/m.test(await scrape()), 120_000);
    expect((await run.imgup.maintenance.doctor.run()).pipeline?.pendingWithObject).toBe(0);
  }, 300_000);
});
