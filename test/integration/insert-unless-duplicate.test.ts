import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { IdempotencyKeyTaken, KyselyImagesRepository } from "../../src/db/images-repository.ts";
import { databaseTargets } from "../support/databases.ts";
import { newImageRow } from "../support/new-image.ts";

const newImage = (ownerId: string, sha256: string, key: string | null) =>
  newImageRow(ownerId, { declaredSha256: sha256, idempotencyKey: key });

describe.each(databaseTargets())("insertUnlessDuplicate on $name", ({ open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  let repo: KyselyImagesRepository;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    repo = new KyselyImagesRepository(handle.db);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("inserts a pending row like insert when the owner has no ready image with the hash", async () => {
    const sha = "a".repeat(64);
    const image = newImage("owner-ud-1", sha, "k1");
    const r = await repo.insertUnlessDuplicate(image, { sha256: sha, visibility: "public" });
    expect(r.outcome).toBe("inserted");
    expect(r.image).toMatchObject({
      id: image.id,
      status: "pending",
      declaredSize: 1234,
      idempotencyKey: "k1",
    });
    expect(await repo.findById(image.id)).toEqual(r.image);
  });

  it("answers the ready image with those bytes and inserts nothing (the key stays unused)", async () => {
    const sha = "b".repeat(64);
    const first = newImage("owner-ud-2", sha, "k1");
    await repo.insert(first);
    // The worker's hash makes it a dedup target, not the declared one.
    await repo.transition(first.id, ["pending"], "ready", { sha256: sha, readyAt: new Date() });
    const second = newImage("owner-ud-2", sha, "k2");
    const r = await repo.insertUnlessDuplicate(second, { sha256: sha, visibility: "public" });
    expect(r).toMatchObject({ outcome: "duplicate", image: { id: first.id, status: "ready" } });
    expect(await repo.findById(second.id)).toBeNull();
    expect(await repo.findByIdempotencyKey("owner-ud-2", "k2")).toBeNull();
    // Another owner or another visibility is no duplicate.
    const other = await repo.insertUnlessDuplicate(newImage("owner-ud-3", sha, null), {
      sha256: sha,
      visibility: "public",
    });
    expect(other.outcome).toBe("inserted");
    const priv = await repo.insertUnlessDuplicate(
      { ...newImage("owner-ud-2", sha, null), visibility: "private" },
      { sha256: sha, visibility: "private" },
    );
    expect(priv.outcome).toBe("inserted");
  });

  it("throws IdempotencyKeyTaken for a key the owner used, as insert does", async () => {
    const sha = "c".repeat(64);
    await repo.insertUnlessDuplicate(newImage("owner-ud-4", sha, "same"), {
      sha256: sha,
      visibility: "public",
    });
    await expect(
      repo.insertUnlessDuplicate(newImage("owner-ud-4", sha, "same"), { sha256: sha, visibility: "public" }),
    ).rejects.toBeInstanceOf(IdempotencyKeyTaken);
  });
});
