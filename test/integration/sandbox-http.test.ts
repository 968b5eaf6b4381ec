/**
 * Cost bombs through the real API (issue 12): image work that passes its deadline ends the upload
 * `rejected` (not retried) while other owners' uploads go on, and an on-the-fly transform over its
 * deadline is a 422 that the next request gets at once. Time bounds are the configured deadline
 * with generous slack: only a hang fails them.
 */

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { readRss } from "../../src/imaging/sandbox/rss.ts";
import { processJobKey } from "../../src/services/storage-events.ts";
import { transformUrl } from "../../src/services/transform-urls.ts";
import { Api } from "../support/api.ts";
import { dbTargets, eventually, finishedJob, type Running, startImgup } from "../support/harness.ts";
import { heicGridBomb, photo, scanBombJpeg } from "../support/image-builders.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const KEY = "sandbox-http-signing-key-0123456789abcdef";
const bound = (deadlineMs: number) => deadlineMs * 3 + 10_000;

describe("image work under hard deadlines, through the API", () => {
  let run: Running | undefined;
  afterEach(async () => run?.stop());

  it("rejects two scan bombs at their deadline (not retried) while another owner's upload becomes ready", async () => {
    const deadline = 3000;
    run = await startImgup(db.make(), {
      IMGUP_WORKER_CONCURRENCY: "2",
      IMGUP_WORKER_OWNER_CONCURRENCY: "2",
      // The scan limit out of the way: the deadline is what must stop these.
      IMGUP_MAX_JPEG_SCANS: "100000",
      IMGUP_PROCESSING_TIMEOUT_MS: String(deadline),
      IMGUP_RATE_LIMIT_BURST: "1000",
    });
    const api = new Api(run.baseUrl, run.alice);
    const bomb = scanBombJpeg(882);
    const bombs: string[] = [];
    for (const owner of ["mallory-1", "mallory-2"]) {
      const key = (await run.imgup.auth.createKey({ ownerId: owner })).key;
      const { intent, put } = await api
        .as(key)
        .uploadBytes(bomb, { filename: `${owner}.jpg`, contentType: "image/jpeg" });
      expect(put.status).toBeLessThan(300);
      bombs.push(intent.image.id);
    }
    // Both bombs hold both worker slots before the small upload arrives.
    await eventually(async () => (run?.imgup.runner?.activeCount ?? 0) >= 2, bound(deadline));
    const started = Date.now();
    const gif = await photo(8, 8).gif().toBuffer();
    const { intent } = await api.uploadBytes(gif, { filename: "small.gif", contentType: "image/gif" });
    const small = await api.settled(intent.image.id, bound(deadline));
    expect(small.status).toBe("ready");
    expect(Date.now() - started).toBeLessThan(bound(deadline));
    for (const id of bombs) {
      const image = await api.as(run.alice).request("GET", `/v1/images/${id}`);
      // Not alice's: look at the row instead.
      expect(image.status).toBe(404);
      const row = await eventually(async () => {
        const r = await imageRow(run as Running, id);
        return r && r.status !== "processing" && r.status !== "pending" ? r : undefined;
      }, bound(deadline));
      expect(row).toMatchObject({ status: "rejected", rejectReason: "timeout" });
      const job = await finishedJob(run.imgup.jobs, processJobKey(id));
      expect(job).toMatchObject({ status: "done", attempts: 1 });
    }
  }, 120_000);

  it("rejects a 30 KB HEIC that decodes to 7000x7000 by the memory bound; the server's RSS stays flat", async () => {
    run = await startImgup(db.make(), {
      // An idle child is ~100-150 MiB; the bomb's decode needs ~300 MiB more. A deadline it cannot
      // meet first, even on a loaded machine, so the memory bound is what this test sees.
      IMGUP_IMAGE_TASK_MEMORY_MB: "256",
      IMGUP_PROCESSING_TIMEOUT_MS: "60000",
      IMGUP_RATE_LIMIT_BURST: "1000",
    });
    const api = new Api(run.baseUrl, run.alice);
    const heic = readFileSync(new URL("../fixtures/images/quadrants.heic", import.meta.url));
    const bomb = heicGridBomb(heic, 7000, 7000);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const rssBefore = readRss(process.pid) ?? 0;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, readRss(process.pid) ?? 0);
    }, 50);
    try {
      const { intent } = await api.uploadBytes(bomb, { filename: "bomb.heic", contentType: "image/heic" });
      const image = await api.settled(intent.image.id, bound(run.config.imaging.processingTimeoutMs));
      expect(image).toMatchObject({ status: "rejected", rejectReason: "too_complex" });
    } finally {
      clearInterval(sampler);
    }
    console.log(`parent RSS around the HEIC bomb: ${mib(rssBefore)} -> peak ${mib(rssPeak)} MiB`);
    // The decoder's ~300 MiB and the 196 MB frame were the child's, which was killed.
    expect(rssPeak - rssBefore).toBeLessThan(150 * 2 ** 20);
  }, 300_000);

  it("answers 422 timeout to an AVIF transform over its deadline, then at once from memory; the server's RSS stays flat", async () => {
    const deadline = 1000;
    run = await startImgup(db.make(), {
      IMGUP_URL_SIGNING_KEYS: KEY,
      IMGUP_TRANSFORM_TIMEOUT_MS: String(deadline),
      IMGUP_RATE_LIMIT_BURST: "1000",
    });
    const api = new Api(run.baseUrl, run.alice);
    // 49 MP of photo-like content (a flat image would encode too fast to test anything).
    const big = await photo(7000, 7000).jpeg({ quality: 80 }).toBuffer();
    const { intent } = await api.uploadBytes(big, { filename: "big.jpg", contentType: "image/jpeg" });
    const image = await api.settled(intent.image.id, bound(30_000));
    expect(image.status).toBe("ready");
    const url = transformUrl(run.baseUrl, KEY, "w_7000,f_avif,q_100", image.id);
    const rssBefore = readRss(process.pid) ?? 0;
    const started = Date.now();
    const first = await fetch(url);
    expect(Date.now() - started).toBeLessThan(bound(deadline));
    expect(first.status).toBe(422);
    expect(await first.json()).toMatchObject({ code: "unprocessable_image", reason: "timeout" });
    const rssAfter = readRss(process.pid) ?? 0;
    const again = await fetch(url);
    expect(again.status).toBe(422);
    expect(await again.json()).toMatchObject({ code: "unprocessable_image", reason: "timeout" });
    console.log(`parent RSS around the AVIF bomb: ${mib(rssBefore)} -> ${mib(rssAfter)} MiB`);
    // The encoder's memory was the child's: the server grew by far less than one 49 MP frame.
    expect(rssAfter - rssBefore).toBeLessThan(196 * 2 ** 20);
  }, 180_000);
});

const mib = (n: number) => Math.round(n / 2 ** 20);

async function imageRow(run: Running, id: string) {
  return run.imgup.database.db
    .selectFrom("images")
    .select(["status", "reject_reason as rejectReason"])
    .where("id", "=", id)
    .executeTakeFirst();
}
