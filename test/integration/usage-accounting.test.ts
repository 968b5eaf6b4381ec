import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { KyselyImagesRepository, type NewImage } from "../../src/db/images-repository.ts";
import { MaintenanceRepository } from "../../src/db/maintenance-repository.ts";
import { KyselyUsageRepository } from "../../src/db/usage-repository.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { originalKey } from "../../src/domain/keys.ts";
import { QuotaExceededError } from "../../src/domain/quota.ts";
import { databaseTargets } from "../support/databases.ts";

/**
 * The usage counters (migration 008's triggers) against every path that changes an image's
 * status or its variants, on PGlite and PostgreSQL: exact, and the guarded insert cannot overshoot.
 */
describe.each(databaseTargets())("usage accounting on $name", ({ open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  let images: KyselyImagesRepository;
  let usage: KyselyUsageRepository;
  let maintenance: MaintenanceRepository;
  let n = 0;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    images = new KyselyImagesRepository(handle.db);
    usage = new KyselyUsageRepository(handle.db);
    maintenance = new MaintenanceRepository(handle.db, "process:");
  });
  afterAll(async () => {
    await cleanup?.();
  });

  const owner = () => `owner-${++n}`;
  const newImage = (ownerId: string, declaredSize: number, extra: Partial<NewImage> = {}): NewImage => {
    const id = newImageId();
    return {
      id,
      ownerId,
      visibility: "public",
      filename: "a.png",
      objectKey: originalKey(id),
      uploadMethod: "put",
      declaredContentType: "image/png",
      declaredSize,
      declaredSha256: null,
      idempotencyKey: null,
      uploadExpiresAt: new Date(Date.now() + 600_000),
      multipartUploadId: null,
      multipartPartSize: null,
      ...extra,
    };
  };

  it("follows an image through its lifecycle: reserved, stored with its variants, freed", async () => {
    const o = owner();
    const img = await images.insert(newImage(o, 100));
    expect(await usage.usage(o)).toEqual({
      originalBytes: 0,
      variantBytes: 0,
      reservedBytes: 100,
      images: 0,
      pendingImages: 1,
    });
    await images.transition(img.id, ["pending"], "processing");
    expect((await usage.usage(o)).reservedBytes).toBe(100);
    // An eager preset is written while processing.
    const eager = await usage.recordVariant({
      imageId: img.id,
      ownerId: o,
      key: "k/thumb",
      bytes: 7,
      cap: null,
    });
    expect(eager).toEqual({ outcome: "recorded", evicted: [] });
    await images.transition(img.id, ["processing"], "ready", { size: 90, publicBytes: 10 });
    expect(await usage.usage(o)).toEqual({
      originalBytes: 100,
      variantBytes: 7,
      reservedBytes: 0,
      images: 1,
      pendingImages: 0,
    });
    // A visibility change moves nothing.
    await images.update(img.id, o, ["ready"], { visibility: "private" });
    expect((await usage.usage(o)).originalBytes).toBe(100);
    await usage.recordVariant({ imageId: img.id, ownerId: o, key: "k/w_400", bytes: 30, cap: null });
    // The same key written again replaces its row, not adds to it.
    await usage.recordVariant({ imageId: img.id, ownerId: o, key: "k/w_400", bytes: 20, cap: null });
    expect((await usage.usage(o)).variantBytes).toBe(27);
    await images.transition(img.id, ["ready"], "deleted", { deletedAt: new Date() });
    expect(await usage.usage(o)).toEqual({
      originalBytes: 0,
      variantBytes: 0,
      reservedBytes: 0,
      images: 0,
      pendingImages: 0,
    });
    expect(await usage.variants(img.id)).toEqual([]);
    // No variant is recorded for a dead image.
    expect(
      await usage.recordVariant({ imageId: img.id, ownerId: o, key: "k/x", bytes: 5, cap: null }),
    ).toEqual({
      outcome: "gone",
    });
    expect((await usage.usage(o)).variantBytes).toBe(0);
  });

  it("releases reservations on expiry, rejection and purge, and removed rows leave nothing", async () => {
    const o = owner();
    const a = await images.insert(newImage(o, 10));
    const b = await images.insert(newImage(o, 20));
    const c = await images.insert(newImage(o, 40, { reservedBytes: 1000 }));
    expect((await usage.usage(o)).reservedBytes).toBe(1030);
    expect(await maintenance.expire(a.id)).toBe(true);
    await images.transition(b.id, ["pending"], "processing");
    await images.transition(b.id, ["processing"], "rejected", { rejectReason: "corrupt" });
    expect((await usage.usage(o)).reservedBytes).toBe(1000);
    expect(await maintenance.markOwnerDeleted(o, 100)).toBe(3);
    expect(await usage.usage(o)).toMatchObject({ reservedBytes: 0, pendingImages: 0, images: 0 });
    await maintenance.removeDeleted([a.id, b.id, c.id]);
    expect(await usage.usage(o)).toMatchObject({ reservedBytes: 0, originalBytes: 0, variantBytes: 0 });
  });

  it("refuses an insert that would exceed a limit, under the owner's lock", async () => {
    const o = owner();
    await images.insert(newImage(o, 100), { maxBytes: 150, maxImages: null });
    const over = images.insert(newImage(o, 60), { maxBytes: 150, maxImages: null });
    await expect(over).rejects.toBeInstanceOf(QuotaExceededError);
    await over.catch((err: QuotaExceededError) =>
      expect(err.refusal).toEqual({ limit: "bytes", used: 100, requested: 60, max: 150 }),
    );
    await expect(images.insert(newImage(o, 1), { maxBytes: null, maxImages: 1 })).rejects.toMatchObject({
      refusal: { limit: "images", used: 1, max: 1 },
    });
    expect((await usage.usage(o)).pendingImages).toBe(1);
  });

  it("lets exactly as many parallel intents in as fit (no overshoot)", async () => {
    const o = owner();
    const limits = { maxBytes: 100, maxImages: null };
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => images.insert(newImage(o, 20), limits)),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter((r) => r.status === "rejected" && r.reason instanceof QuotaExceededError);
    expect(ok).toBe(5);
    expect(refused).toHaveLength(7);
    expect((await usage.usage(o)).reservedBytes).toBe(100);
  });

  it("keeps one image's variants under its cap, least recently accessed dropped first", async () => {
    const o = owner();
    const img = await images.insert(newImage(o, 100));
    await images.transition(img.id, ["pending"], "processing");
    await images.transition(img.id, ["processing"], "ready", { size: 100 });
    const write = (key: string, bytes: number) =>
      usage.recordVariant({ imageId: img.id, ownerId: o, key, bytes, cap: 100 });
    expect(await write("a", 40)).toEqual({ outcome: "recorded", evicted: [] });
    expect(await write("b", 40)).toEqual({ outcome: "recorded", evicted: [] });
    // "a" is read again: "b" is now the least recently accessed.
    await usage.touchVariant(img.id, "a", 0);
    expect(await write("c", 40)).toEqual({ outcome: "recorded", evicted: ["b"] });
    expect((await usage.variants(img.id)).map((v) => v.key)).toEqual(["a", "c"]);
    expect(await write("huge", 101)).toEqual({ outcome: "too_large" });
    expect((await usage.usage(o)).variantBytes).toBe(80);
    // A touch within the interval is skipped (at most one write per interval).
    const before = (await usage.variants(img.id)).find((v) => v.key === "c")?.lastAccessedAt;
    await usage.touchVariant(img.id, "c", 3600_000);
    expect((await usage.variants(img.id)).find((v) => v.key === "c")?.lastAccessedAt).toEqual(before);
  });

  it("reads and changes per-owner overrides", async () => {
    const o = owner();
    expect(await usage.quotaOverride(o)).toBeNull();
    await usage.setQuotaOverride(o, { maxBytes: 5, maxImages: null });
    await usage.setQuotaOverride(o, { maxBytes: 6, maxImages: 2 });
    expect(await usage.quotaOverride(o)).toEqual({ maxBytes: 6, maxImages: 2 });
    expect(await usage.deleteQuotaOverride(o)).toBe(true);
    expect(await usage.deleteQuotaOverride(o)).toBe(false);
  });
});
