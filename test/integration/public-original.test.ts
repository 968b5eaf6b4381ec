import { createHash } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publicOriginalKey } from "../../src/domain/keys.ts";
import { Api } from "../support/api.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { GPS_EXIF, hasGpsIfd, photo } from "../support/image-builders.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const fetchBytes = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), etag: res.headers.get("etag") };
};

describe.each(dbTargets())("public originals carry no location ($name)", (target) => {
  let run: Running;
  let alice: Api;
  beforeAll(async () => {
    run = await startImgup(target.make());
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  const upload = async (bytes: Buffer, visibility: "public" | "private" = "public") => {
    const { intent } = await alice.uploadBytes(bytes, {
      filename: "holiday.jpg",
      contentType: "image/jpeg",
      visibility,
    });
    await alice.request("POST", `/v1/uploads/${intent.image.id}/complete`);
    const image = await alice.settled(intent.image.id);
    expect(image.status).toBe("ready");
    return image;
  };

  it("serves anyone the same pixels without EXIF/GPS, upright; the owner's signed source URL the untouched upload", async () => {
    const taken = await photo(96, 64)
      .jpeg()
      .withMetadata({ orientation: 6 })
      .withExifMerge(GPS_EXIF)
      .toBuffer();
    expect(hasGpsIfd(taken)).toBe(true);
    const image = await upload(taken);
    const urls = image.urls as NonNullable<typeof image.urls>;

    const anyone = await fetchBytes(urls.original);
    expect(anyone.status).toBe(200);
    expect(hasGpsIfd(anyone.bytes)).toBe(false);
    expect((await sharp(anyone.bytes).metadata()).orientation).toBe(6);
    expect(await sharp(anyone.bytes).raw().toBuffer()).toEqual(await sharp(taken).raw().toBuffer());

    expect(urls.source).toMatch(/[?&]sig=/);
    const owner = await fetchBytes(urls.source);
    expect(owner.status).toBe(200);
    expect(sha(owner.bytes)).toBe(sha(taken));
    expect(owner.etag).not.toBe(anyone.etag);

    // The copy is one of the image's objects: deleting the image removes it too.
    const key = publicOriginalKey(image.id);
    expect(await run.imgup.store.head(key)).not.toBeNull();
    expect((await alice.request("DELETE", `/v1/images/${image.id}`)).status).toBe(204);
    await eventually(async () => (await run.imgup.store.head(key)) === null, 60_000);
  });

  it("makes no copy when there is nothing to strip", async () => {
    const plain = await photo(64, 48).jpeg().toBuffer();
    const image = await upload(plain);
    expect(await run.imgup.store.head(publicOriginalKey(image.id))).toBeNull();
    expect(sha((await fetchBytes(image.urls?.original as string)).bytes)).toBe(sha(plain));
  });

  it("a private image's signed original is the untouched upload", async () => {
    const taken = await photo(96, 64).jpeg().withExifMerge(GPS_EXIF).toBuffer();
    const image = await upload(taken, "private");
    const original = image.urls?.original as string;
    expect((await fetch(original.split("?")[0] as string)).status).toBe(404);
    expect(sha((await fetchBytes(original)).bytes)).toBe(sha(taken));
  });
});
