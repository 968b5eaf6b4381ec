import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { KyselyImagesRepository, type NewImage } from "../../src/db/images-repository.ts";
import { databaseTargets } from "../support/databases.ts";

function intent(n: number, idempotencyKey: string | null): NewImage {
  return {
    id: `0190f0c4-7b1e-7c3a-8f00-${String(n).padStart(12, "0")}`,
    ownerId: "alice",
    visibility: "public",
    filename: `f${n}.jpg`,
    objectKey: `originals/${n}`,
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: 10,
    declaredSha256: null,
    idempotencyKey,
    uploadExpiresAt: new Date("2030-01-01T00:00:00Z"),
    multipartUploadId: null,
    multipartPartSize: null,
  };
}

/** Replaying a buffered intent on the real database: only the image id is a harmless conflict. */
describe.each(databaseTargets())("insertIfAbsent on $name", ({ open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  let repo: KyselyImagesRepository;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    repo = new KyselyImagesRepository(handle.db);
  });
  afterAll(async () => cleanup?.());

  it("inserts, finds the same image again, and reports another image holding the idempotency key", async () => {
    expect(await repo.insertIfAbsent(intent(1, "k1"))).toEqual({ outcome: "inserted" });
    expect(await repo.insertIfAbsent(intent(1, "k1"))).toEqual({ outcome: "exists" });
    expect(await repo.insertIfAbsent(intent(2, "k1"))).toEqual({
      outcome: "conflict",
      constraint: "images_owner_idempotency_key_uq",
      existingId: intent(1, null).id,
    });
    expect(await repo.findById(intent(2, null).id)).toBeNull();
    // Another owner's key, and no key at all, do not conflict.
    expect(await repo.insertIfAbsent({ ...intent(3, "k1"), ownerId: "bob" })).toEqual({
      outcome: "inserted",
    });
    expect(await repo.insertIfAbsent(intent(4, null))).toEqual({ outcome: "inserted" });
  });
});
