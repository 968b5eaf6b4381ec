import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imagePrefix } from "../../src/domain/keys.ts";
import { Api, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { GPS_EXIF, photo } from "../support/image-builders.ts";

interface UsageJson {
  bytes: { originals: number; variants: number; reserved: number; total: number };
  images: { stored: number; pending: number };
}

/**
 * After a scripted run (uploads with and without a public copy, eager and on-the-fly variants, a
 * dedup, a delete) the usage record equals what the storage holds, and `imgup doctor` says so; after
 * the storage is tampered with it reports the drift, and --fix-usage rebuilds the record.
 */
describe.each(dbTargets())("usage against the storage on $name", ({ make }) => {
  let run: Running;
  let alice: Api;
  let bob: Api;
  const ids: string[] = [];

  beforeAll(async () => {
    run = await startImgup(make());
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
  }, 120_000);
  afterAll(async () => {
    await run?.stop();
  });

  const usage = async (api: Api) => (await api.request<UsageJson>("GET", "/v1/usage")).body;
  /** Sums of the objects under the owner's images' prefixes, listed from the storage. */
  const inStorage = async (imageIds: string[]) => {
    let originals = 0;
    let variants = 0;
    for (const id of imageIds) {
      const page = await run.imgup.store.list(imagePrefix(id), { limit: 1000 });
      for (const o of page.objects) {
        if (o.key.includes("/v/")) variants += o.size;
        else if (o.key.endsWith("/original") || o.key.endsWith("/public")) originals += o.size;
      }
    }
    return { originals, variants };
  };
  const upload = async (api: Api, bytes: Buffer, contentType: string) => {
    const { intent } = await api.uploadBytes(bytes, { filename: "x", contentType });
    const image = await api.settled(intent.image.id);
    expect(image.status).toBe("ready");
    return image.id;
  };

  it("matches the storage after a scripted run, and the doctor agrees", async () => {
    const png = await makeImage("png", 80, 60);
    const withGps = await photo(96, 64).jpeg().withExifMerge(GPS_EXIF).toBuffer();
    ids.push(await upload(alice, png, "image/png"));
    ids.push(await upload(alice, withGps, "image/jpeg")); // stores a public copy without the GPS tags
    const deleted = await upload(alice, await makeImage("webp", 50, 50), "image/webp");
    await upload(bob, png, "image/png");
    // An on-the-fly variant and a preset made on request.
    const signed = await alice.request<{ url: string }>("POST", `/v1/images/${ids[0]}/urls`, {
      json: { spec: "w_40,f_png" },
    });
    expect((await fetch(signed.body.url)).status).toBe(200);
    expect((await fetch(`${run.baseUrl}/i/${ids[1]}/small`)).status).toBe(200);
    // A dedup adds nothing.
    const dup = await alice.createIntent({
      filename: "again.png",
      contentType: "image/png",
      size: png.length,
      sha256: sha256(png),
    });
    expect(dup.status).toBe(200);
    expect((await alice.request("DELETE", `/v1/images/${deleted}`)).status).toBeLessThan(300);

    const u = await usage(alice);
    const stored = await inStorage(ids);
    expect(u.bytes).toMatchObject({ originals: stored.originals, variants: stored.variants, reserved: 0 });
    expect(u.bytes.originals).toBeGreaterThan(png.length + withGps.length); // the public copy counts
    expect(u.images).toMatchObject({ stored: 2, pending: 0 });

    const report = await run.imgup.maintenance.doctor.run();
    expect(report.usage).toMatchObject({ drift: 0, samples: [], fixed: null });
    expect(report.usage?.ownersChecked).toBeGreaterThanOrEqual(2);
  });

  it("reports drift after the storage is tampered with, and --fix-usage rebuilds the record", async () => {
    const [first = "", second = ""] = ids;
    // A variant object lost, and one written behind imgup's back.
    const variants = (await run.imgup.store.list(`${imagePrefix(first)}v/`, { limit: 100 })).objects;
    expect(variants.length).toBeGreaterThan(0);
    const lost = variants[0]?.key ?? "";
    await run.imgup.store.delete(lost);
    const extra = Buffer.alloc(1234, 1);
    await run.imgup.store.put(`${imagePrefix(second)}v/w_7,fit_inside,f_png.png`, extra, {
      contentType: "image/png",
      contentLength: extra.length,
    });

    const drifted = await run.imgup.maintenance.doctor.run();
    expect(drifted.usage?.drift).toBe(1);
    const sample = drifted.usage?.samples[0];
    expect(sample?.ownerId).toBe("alice");
    const stored = await inStorage(ids);
    expect(sample?.storage).toEqual(stored);
    expect(sample?.recorded.variants).not.toBe(stored.variants);

    const fixed = await run.imgup.maintenance.doctor.run({ fixUsage: true });
    expect(fixed.usage).toMatchObject({ drift: 0, fixed: 1 });
    expect((await usage(alice)).bytes).toMatchObject({
      originals: stored.originals,
      variants: stored.variants,
    });
    expect((await run.imgup.maintenance.doctor.run()).usage).toMatchObject({ drift: 0, fixed: null });
  });
});
