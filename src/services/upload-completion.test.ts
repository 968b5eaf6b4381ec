import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import { localStore } from "../../test/support/local-store.ts";
import type { NewImage } from "../db/images-repository.ts";
import { originalKey, uploadKey } from "../domain/keys.ts";
import type { JobQueue, NewJob } from "../jobs/job-queue.ts";
import type { LocalObjectStore } from "../storage/local.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import { UploadCompletionService } from "./upload-completion.ts";

const alice: Principal = { ownerId: "alice", scopes: new Set(["upload"]), via: "api_key" };
const bob: Principal = { ...alice, ownerId: "bob" };

function image(over: Partial<NewImage> = {}): NewImage {
  return {
    id: "00000000-0000-7000-8000-000000000001",
    ownerId: "alice",
    visibility: "public",
    filename: "a.jpg",
    objectKey: originalKey("00000000-0000-7000-8000-000000000001"),
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: 4,
    declaredSha256: null,
    idempotencyKey: null,
    uploadExpiresAt: new Date(Date.now() + 600_000),
    multipartUploadId: null,
    multipartPartSize: null,
    ...over,
  };
}

describe("UploadCompletionService.complete on failing ports", () => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  let repo: FakeImagesRepository;
  let enqueued: NewJob[];
  let service: UploadCompletionService;

  beforeEach(async () => {
    ({ store, cleanup } = await localStore());
    repo = new FakeImagesRepository();
    enqueued = [];
    const jobs = {
      enqueue: async (job: NewJob) => {
        enqueued.push(job);
        return { id: String(enqueued.length), created: true };
      },
    } as unknown as JobQueue;
    service = new UploadCompletionService(repo, store, jobs, 600);
  });
  afterEach(() => cleanup());

  it("the object is not in the storage: 409 upload_incomplete and no job", async () => {
    await repo.insert(image());
    await expect(service.complete(alice, image().id, undefined)).rejects.toMatchObject({
      status: 409,
      code: "upload_incomplete",
    });
    expect(enqueued).toEqual([]);
  });

  it("the object is there: queues processing (once per image key) and answers with the image", async () => {
    await repo.insert(image());
    await store.put(uploadKey(image().id), Buffer.from("abcd"), { contentType: "image/jpeg" });
    const answer = await service.complete(alice, image().id, undefined);
    expect(answer).toMatchObject({ id: image().id, status: "pending" });
    expect(enqueued).toHaveLength(1);
    expect(enqueued[0]?.payload).toEqual({ imageId: image().id });
  });

  it("another owner's image is not found, and nothing is queued", async () => {
    await repo.insert(image());
    await store.put(uploadKey(image().id), Buffer.from("abcd"), { contentType: "image/jpeg" });
    await expect(service.complete(bob, image().id, undefined)).rejects.toMatchObject({ status: 404 });
    expect(enqueued).toEqual([]);
  });

  it("an image past pending is answered as it is: completing twice queues nothing new", async () => {
    await repo.insert(image());
    await repo.transition(image().id, ["pending"], "ready");
    expect(await service.complete(alice, image().id, undefined)).toMatchObject({ status: "ready" });
    expect(enqueued).toEqual([]);
  });

  it("a multipart upload completed without its parts is a 400, and the storage is not touched", async () => {
    await repo.insert(image({ uploadMethod: "multipart", multipartUploadId: "u1", multipartPartSize: 5 }));
    await expect(service.complete(alice, image().id, [])).rejects.toMatchObject({ status: 400 });
    expect(enqueued).toEqual([]);
  });

  it("the database refusing: the error surfaces and nothing is queued", async () => {
    await repo.insert(image());
    repo.fail = () => connectionRefused();
    await expect(service.complete(alice, image().id, undefined)).rejects.toThrow(/ECONNREFUSED/);
    expect(enqueued).toEqual([]);
  });

  it("a multipart upload whose parts do not add up to the declared size is refused before assembly", async () => {
    const local = store as LocalObjectStore;
    const MiB = 1024 * 1024;
    const declared = 12 * MiB; // parts of 5 MiB: 5, 5 and 2 MiB
    const { uploadId } = await local.createMultipartUpload(uploadKey(image().id), "image/jpeg");
    await repo.insert(
      image({
        uploadMethod: "multipart",
        multipartUploadId: uploadId,
        multipartPartSize: 5 * MiB,
        declaredSize: declared,
      }),
    );
    const etags: { partNumber: number; etag: string }[] = [];
    for (const partNumber of [1, 2]) {
      const url = new URL(
        await local.presignUploadPart({
          key: uploadKey(image().id),
          uploadId,
          partNumber,
          contentLength: 5 * MiB,
          expiresInSeconds: 60,
        }),
      );
      const res = await local.handleUpload({
        method: "PUT",
        key: uploadKey(image().id),
        query: Object.fromEntries(url.searchParams),
        headers: { "content-length": String(5 * MiB) },
        body: Readable.from([Buffer.alloc(5 * MiB, partNumber)]),
      });
      etags.push({ partNumber, etag: res.headers.ETag as string });
    }
    await expect(service.complete(alice, image().id, etags)).rejects.toMatchObject({
      status: 409,
      code: "upload_incomplete",
      message: expect.stringContaining("part 3 is missing"),
    });
    expect(await store.head(uploadKey(image().id))).toBeNull();
    expect(await store.head(image().objectKey)).toBeNull();
    expect(enqueued).toEqual([]);
  });
});
