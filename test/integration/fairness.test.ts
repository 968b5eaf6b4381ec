import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processJobKey } from "../../src/services/storage-events.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { zeroPng } from "../support/image-builders.ts";
import { TestClock } from "../support/test-clock.ts";

// Every assertion below is on the order things finished, never on how long they took: the CI
// machine may be loaded. Time bounds only catch a hang.
const HANG_MS = 120_000;

async function upload(api: Api, bytes: Buffer, contentType: string): Promise<string> {
  const { intent, put } = await api.uploadBytes(bytes, { filename: "f", contentType });
  if (put.status >= 300) throw new Error(`upload failed: ${put.status} ${put.body}`);
  return intent.image.id;
}

/** A photo-like JPEG; `seed` changes one pixel so uploads are not de-duplicated. */
async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  const { data, info } = await sharp(await makeImage("png", width, height))
    .raw()
    .toBuffer({ resolveWithObject: true });
  data[seed % data.length] = (seed * 37) % 256;
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .jpeg()
    .toBuffer();
}

describe("an owner's transform flood does not hold up another owner's variant", () => {
  const db = dbTargets()[0];
  if (!db) throw new Error("no database target");
  let run: Running;
  let alice: Api;
  let bob: Api;
  let aliceImage: string;
  let bobImage: string;

  beforeAll(async () => {
    run = await startImgup(db.make(), {
      IMGUP_TRANSFORM_CONCURRENCY: "2",
      IMGUP_TRANSFORM_OWNER_CONCURRENCY: "1",
      IMGUP_TRANSFORM_QUEUE: "400",
      IMGUP_TRANSFORM_MISSES_BURST: "100000",
      IMGUP_TRANSFORM_OWNER_MISSES_BURST: "100000",
      IMGUP_SIGN_URLS_BURST: "1000",
    });
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
    aliceImage = await upload(alice, await photo(3000, 2000, 1), "image/jpeg");
    bobImage = await upload(bob, await makeImage("jpeg", 320, 240), "image/jpeg");
    for (const [api, id] of [
      [alice, aliceImage],
      [bob, bobImage],
    ] as const) {
      expect((await api.settled(id, HANG_MS)).status).toBe("ready");
    }
  }, HANG_MS * 2);
  afterAll(async () => run?.stop());

  const waiting = async () => (await run.imgup.metrics.transformQueueLength.get()).values[0]?.value ?? 0;

  it(
    "serves B's preset while A's 40 distinct signed variants are still queued",
    async () => {
      const urls: string[] = [];
      for (let i = 0; i < 40; i++) {
        const signed = await alice.request<{ url: string }>("POST", `/v1/images/${aliceImage}/urls`, {
          json: { spec: `w_${400 + i * 10},f_webp` },
        });
        expect(signed.status).toBe(200);
        urls.push(signed.body.url);
      }
      const finished: string[] = [];
      const fetchAs = async (label: string, url: string) => {
        const res = await fetch(url);
        await res.arrayBuffer();
        finished.push(label);
        return res.status;
      };
      const flood = urls.map((url, i) => fetchAs(`a${i}`, url));
      // Most of A's transforms are waiting for a slot before B asks.
      await eventually(async () => (await waiting()) >= 25, HANG_MS);
      const aDoneWhenAsked = finished.length;
      const bStatus = await fetchAs("b", `${run.baseUrl}/i/${bobImage}/small`);
      expect(bStatus).toBe(200);
      expect((await Promise.all(flood)).every((s) => s === 200)).toBe(true);
      const aDoneBeforeB = finished.indexOf("b");
      // FIFO made B wait for every one of A's transforms queued ahead of it (at least 25); fair
      // slots let it run beside A's one running transform.
      expect(aDoneBeforeB - aDoneWhenAsked).toBeLessThanOrEqual(5);
      expect(finished.length - 1 - aDoneBeforeB).toBeGreaterThanOrEqual(15);
    },
    HANG_MS,
  );
});

describe.each(dbTargets())(
  "an owner's processing backlog does not hold up another owner's upload on $name",
  (db) => {
    let run: Running;

    beforeAll(async () => {
      run = await startImgup(db.make(), {
        IMGUP_WORKER_CONCURRENCY: "2",
        IMGUP_WORKER_OWNER_CONCURRENCY: "1",
        IMGUP_RATE_LIMIT_BURST: "100",
      });
    });
    afterAll(async () => run?.stop());

    it(
      "makes B's small upload ready before most of A's large flat PNGs",
      async () => {
        const alice = new Api(run.baseUrl, run.alice);
        const bob = new Api(run.baseUrl, run.bob);
        const aIds: string[] = [];
        // Flat 16-MP PNGs: a few KB each, a full decode each to process. Distinct sizes, so no dedup.
        for (let i = 0; i < 10; i++) aIds.push(await upload(alice, zeroPng(4000, 4000 + i), "image/png"));
        // Every one of A's jobs is queued before B uploads.
        await eventually(async () => {
          const jobs = await Promise.all(aIds.map((id) => run.imgup.jobs.get(processJobKey(id))));
          return jobs.every((j) => j !== null);
        }, HANG_MS);
        const bId = await upload(bob, await makeImage("png", 64, 48), "image/png");
        await eventually(async () => {
          const jobs = await Promise.all([...aIds, bId].map((id) => run.imgup.jobs.get(processJobKey(id))));
          return jobs.every((j) => j?.status === "done");
        }, HANG_MS);
        const images = await Promise.all([...aIds.map((id) => alice.getImage(id)), bob.getImage(bId)]);
        expect(images.map((r) => r.body.status)).toEqual(Array(aIds.length + 1).fill("ready"));
        // Events in the order of the database's clock (one clock, so only their order matters): when
        // B's job was queued, and when each job was completed (after its image turned ready).
        const rows = await run.imgup.database.db
          .selectFrom("jobs")
          .select(["key", "status", "created_at", "updated_at"])
          .execute();
        const job = new Map(rows.map((r) => [r.key, r]));
        const at = (d: Date | string | undefined) => new Date(d as Date).getTime();
        const bJob = job.get(processJobKey(bId));
        expect(bJob?.status).toBe("done");
        const bQueued = at(bJob?.created_at);
        const bReady = at(bJob?.updated_at);
        const aTimes = aIds.map((id) => at(job.get(processJobKey(id))?.updated_at));
        const aReadyWhileBWaited = aTimes.filter((t) => t > bQueued && t < bReady).length;
        const aReadyAfterB = aTimes.filter((t) => t > bReady).length;
        // FIFO across owners started B's job only once eight or nine of A's had finished (two slots;
        // measured: 7 of 8 before B). One slot per owner lets B's job start at once beside A's one
        // running job (measured: at most that one finished meanwhile).
        expect(aReadyWhileBWaited).toBeLessThanOrEqual(2);
        expect(aReadyAfterB).toBeGreaterThanOrEqual(5);
      },
      HANG_MS * 2,
    );
  },
);

describe("budgets that stop one owner flooding shared capacity", () => {
  const db = dbTargets()[0];
  if (!db) throw new Error("no database target");
  const clock = new TestClock();
  let run: Running;
  let alice: Api;
  let bob: Api;
  let aliceImage: string;
  let bobImage: string;

  beforeAll(async () => {
    run = await startImgup(
      db.make(),
      {
        IMGUP_SIGN_URLS_PER_SEC: "1",
        IMGUP_SIGN_URLS_BURST: "3",
        IMGUP_TRANSFORM_MISSES_BURST: "1000",
        IMGUP_TRANSFORM_OWNER_MISSES_PER_SEC: "1",
        IMGUP_TRANSFORM_OWNER_MISSES_BURST: "2",
      },
      // Buckets metered by a clock that stands still: the counts below hold however slow the machine.
      { kvClock: clock.now },
    );
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
    aliceImage = await upload(alice, await makeImage("jpeg", 640, 480), "image/jpeg");
    bobImage = await upload(bob, await makeImage("jpeg", 640, 480), "image/jpeg");
    await alice.settled(aliceImage, HANG_MS);
    await bob.settled(bobImage, HANG_MS);
  }, HANG_MS);
  afterAll(async () => run?.stop());

  it("limits signing transform URLs per owner with 429 and Retry-After", async () => {
    const sign = (api: Api, id: string, i: number) =>
      api.request("POST", `/v1/images/${id}/urls`, { json: { spec: `w_${100 + i}` } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await sign(alice, aliceImage, i)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await sign(alice, aliceImage, 9);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: "rate_limited" });
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await sign(bob, bobImage, 0)).status).toBe(200);
    clock.advance(1_000);
    expect((await sign(alice, aliceImage, 10)).status).toBe(200);
  });

  it("charges transform misses to the image owner's budget, whoever asks", async () => {
    const get = (id: string, preset: string) => fetch(`${run.baseUrl}/i/${id}/${preset}`);
    expect((await get(aliceImage, "small")).status).toBe(200);
    expect((await get(aliceImage, "medium")).status).toBe(200);
    // The client's own budget (1000) is far from spent: this is the owner's.
    const refused = await get(aliceImage, "large");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toMatchObject({ code: "rate_limited" });
    // Hits cost nothing, and another owner's images have a budget of their own.
    expect((await get(aliceImage, "small")).status).toBe(200);
    expect((await get(bobImage, "small")).status).toBe(200);
    clock.advance(1_000);
    expect((await get(aliceImage, "large")).status).toBe(200);
  });
});
