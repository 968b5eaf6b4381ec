import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KyselyUsageRepository } from "../../src/db/usage-repository.ts";
import { imagePrefix } from "../../src/domain/keys.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { photoLike } from "../support/image-builders.ts";

const CAP = 250_000;
// Canonical specs (as the keys spell them). Re-encoding a small JPEG as full-size PNGs: each variant is 20-30 times the original, the shape
// of the report (a 1.5 MB original turned into 51 MB of variants by five signed sizes).
const SPECS = [600, 560, 520, 480, 440].map((w) => `w_${w},fit_inside,f_png`);

/** The per-image variant cap through real requests: it holds, and the least recently accessed go first. */
describe.each(dbTargets())("variant cap on $name", ({ make }) => {
  let run: Running;
  let alice: Api;
  let image: ImageJson;
  let original: Buffer;
  let repo: KyselyUsageRepository;
  const urls: string[] = [];

  beforeAll(async () => {
    run = await startImgup(make(), {
      // The floor decides here (4 x a 4 KB original is less): a fixed cap the sizes below are chosen for.
      IMGUP_VARIANT_BYTES_MIN: String(CAP),
      IMGUP_VARIANT_TOUCH_INTERVAL_S: "0",
    });
    alice = new Api(run.baseUrl, run.alice);
    repo = new KyselyUsageRepository(run.imgup.database.db);
    original = await (await photoLike(600, 400, 3)).jpeg({ quality: 40 }).toBuffer();
    const { intent } = await alice.uploadBytes(original, { filename: "p.jpg", contentType: "image/jpeg" });
    image = await alice.settled(intent.image.id);
    expect(image.status).toBe("ready");
    for (const spec of SPECS) {
      const r = await alice.request<{ url: string }>("POST", `/v1/images/${image.id}/urls`, {
        json: { spec },
      });
      expect(r.status).toBe(200);
      urls.push(r.body.url);
    }
  }, 120_000);
  afterAll(async () => {
    await run?.stop();
  });

  const stored = async () => {
    const page = await run.imgup.store.list(`${imagePrefix(image.id)}v/`, { limit: 1000 });
    return page.objects;
  };
  const usage = async () =>
    (await alice.request<{ bytes: { variants: number } }>("GET", "/v1/usage")).body.bytes.variants;
  const fetchVariant = async (url: string) => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  const keyOf = (spec: string) => `${imagePrefix(image.id)}v/${spec}.png`;

  it("never holds more than the cap, however many sizes are asked for; usage matches the storage", async () => {
    let served = 0;
    for (const url of urls) {
      const body = await fetchVariant(url);
      served += body.length;
      const objects = await stored();
      const inStorage = objects.reduce((sum, o) => sum + o.size, 0);
      expect(inStorage).toBeLessThanOrEqual(CAP);
      expect(await usage()).toBe(inStorage);
      const rows = await repo.variants(image.id);
      expect(rows.map((r) => r.key).sort()).toEqual(objects.map((o) => o.key).sort());
    }
    // The amplification the cap bounds: without it all of these would be stored.
    expect(served).toBeGreaterThan(20 * original.length);
    expect(served).toBeGreaterThan(CAP);
  });

  it("drops the least recently accessed variant first", async () => {
    const sizes = await Promise.all(
      SPECS.slice(0, 3).map(async (_, i) => (await fetchVariant(urls[i] ?? "")).length),
    );
    // What this test relies on: two of these fit together, three do not.
    const [a = 0, b = 0, c = 0] = sizes;
    expect(a + b).toBeLessThanOrEqual(CAP);
    expect(a + c).toBeLessThanOrEqual(CAP);
    expect(a + b + c).toBeGreaterThan(CAP);
    // Start from A and B stored, B accessed more recently than A.
    await fetchVariant(urls[0] ?? "");
    await fetchVariant(urls[1] ?? "");
    const keys = async () => (await repo.variants(image.id)).map((v) => v.key);
    await eventually(async () => {
      const k = await keys();
      return k.includes(keyOf(SPECS[0] ?? "")) && k.includes(keyOf(SPECS[1] ?? ""));
    });
    // A is read again (a storage hit): its access moves past B's. Accesses compare in
    // milliseconds, and on a fast machine B's and A's can share one: then A is read once more.
    await eventually(async () => {
      await fetchVariant(urls[0] ?? "");
      const rows = await repo.variants(image.id);
      const at = (spec: string) => rows.find((r) => r.key === keyOf(spec))?.lastAccessedAt.getTime() ?? 0;
      return at(SPECS[0] ?? "") > at(SPECS[1] ?? "");
    });
    await fetchVariant(urls[2] ?? "");
    const after = await keys();
    expect(after).toContain(keyOf(SPECS[0] ?? ""));
    expect(after).toContain(keyOf(SPECS[2] ?? ""));
    expect(after).not.toContain(keyOf(SPECS[1] ?? ""));
    expect((await stored()).map((o) => o.key)).not.toContain(keyOf(SPECS[1] ?? ""));
  });
});
