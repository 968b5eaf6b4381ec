import { describe, expect, it } from "vitest";
import { FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import { MemoryJobQueue } from "../../test/support/memory-job-queue.ts";
import type { Visibility } from "../domain/image.ts";
import type { Principal } from "./auth.ts";
import type { CdnPurgeQueue, PurgeReason } from "./cdn-purge.ts";
import { ImagesService } from "./images.ts";

const alice: Principal = { ownerId: "alice", scopes: new Set(["upload"]), via: "api_key" };

/** Which images ImagesService asks the CDN to forget, and why. */
async function setup(visibility: Visibility) {
  const repo = new FakeImagesRepository();
  const id = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
  const record = await repo.insert({
    id,
    ownerId: "alice",
    visibility,
    filename: "a.jpg",
    objectKey: `x/${id}/upload/1`,
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: 10,
    declaredSha256: null,
    idempotencyKey: null,
    uploadExpiresAt: new Date(),
    multipartUploadId: null,
    multipartPartSize: null,
  });
  repo.rows.set(id, { ...record, status: "ready" });
  const purged: Array<[string[], PurgeReason]> = [];
  const cdn: CdnPurgeQueue = {
    enqueue: async (ids, reason) => {
      purged.push([[...ids], reason]);
    },
  };
  const jobs = new MemoryJobQueue();
  return { id, repo, jobs, purged, service: new ImagesService(repo, jobs, null, cdn) };
}

describe("ImagesService and the CDN purge", () => {
  it("purges a public image when it is deleted or made private", async () => {
    const deleted = await setup("public");
    await deleted.service.delete(alice, deleted.id);
    expect(deleted.purged).toEqual([[[deleted.id], "deleted"]]);

    const hidden = await setup("public");
    await hidden.service.setVisibility(alice, hidden.id, "private");
    expect(hidden.purged).toEqual([[[hidden.id], "private"]]);
  });

  it("purges nothing no shared cache can hold: a private image, or one made public", async () => {
    const deleted = await setup("private");
    await deleted.service.delete(alice, deleted.id);
    const shown = await setup("private");
    await shown.service.setVisibility(alice, shown.id, "public");
    const same = await setup("public");
    await same.service.setVisibility(alice, same.id, "public");
    expect([...deleted.purged, ...shown.purged, ...same.purged]).toEqual([]);
  });

  it("has the purge queued before the row changes: a failure right after the update cannot skip it", async () => {
    // The process dies (here: the next step throws) once the row is deleted.
    const deleted = await setup("public");
    deleted.jobs.requeue = async () => {
      throw new Error("killed after the update");
    };
    await expect(deleted.service.delete(alice, deleted.id)).rejects.toThrow("killed");
    expect(deleted.repo.rows.get(deleted.id)?.status).toBe("deleted");
    expect(deleted.purged).toEqual([[[deleted.id], "deleted"]]);

    // The update itself is the last step of setVisibility: the purge must already be queued then.
    const hidden = await setup("public");
    const update = hidden.repo.update.bind(hidden.repo);
    let purgedAtUpdate: number | null = null;
    hidden.repo.update = async (...args) => {
      purgedAtUpdate = hidden.purged.length;
      return update(...args);
    };
    await hidden.service.setVisibility(alice, hidden.id, "private");
    expect(purgedAtUpdate).toBe(1);
  });
});
