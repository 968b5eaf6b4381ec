import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId, uploadKey } from "../domain/keys.ts";
import { missingParts, PART_URLS_PER_RESPONSE } from "../domain/multipart.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { ObjectStore, UploadedPart } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import { partLength, type SignedPart, signParts } from "./part-urls.ts";
import { PROCESS_IMAGE, processJobKey } from "./storage-events.ts";
import { deleteUploadedBytes, locateUpload } from "./upload-source.ts";

export interface PartsStatus {
  uploadId: string;
  partSize: number;
  partCount: number;
  uploaded: UploadedPart[];
  /** Signed URLs for the next parts not uploaded yet (at most 100). */
  pending: SignedPart[];
  expiresAt: string;
}

/**
 * After the intent: resume, complete, abort. Completion is the storage's event; the client's
 * `complete` is only a hint (and the only way to finish a multipart upload).
 */
export class UploadCompletionService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly jobs: JobQueue,
    private readonly urlTtlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resume support: what the storage already has, and fresh URLs for what is missing. */
  async parts(principal: Principal, id: string): Promise<PartsStatus> {
    const image = await this.pendingMultipart(principal, id);
    const uploadId = image.multipartUploadId as string;
    const partSize = image.multipartPartSize as number;
    const partCount = Math.ceil(image.declaredSize / partSize);
    const uploaded = await this.store.listParts(uploadKey(image.id), uploadId);
    const numbers = missingParts(
      partCount,
      uploaded.map((p) => p.partNumber),
      PART_URLS_PER_RESPONSE,
    );
    const expiresAt = new Date(this.now() + this.urlTtlSeconds * 1000);
    // Signing more parts keeps the intent alive: a 10 GB upload outlasts one URL lifetime.
    await this.images.update(image.id, principal.ownerId, ["pending"], { uploadExpiresAt: expiresAt });
    const upload = { key: uploadKey(image.id), uploadId, size: image.declaredSize, partSize };
    const pending = await signParts(this.store, upload, numbers, this.urlTtlSeconds);
    return { uploadId, partSize, partCount, uploaded, pending, expiresAt: expiresAt.toISOString() };
  }

  /**
   * The client says it finished. For multipart this assembles the object; for PUT/POST it is a
   * hint that queues processing in case the storage event is slow or lost. Idempotent.
   */
  async complete(
    principal: Principal,
    id: string,
    parts: { partNumber: number; etag: string }[] | undefined,
  ): Promise<ImageRecord> {
    const image = await this.owned(principal, id);
    if (image.status !== "pending") return image;
    if (image.uploadMethod === "multipart") {
      if (!parts || parts.length === 0) {
        throw ERRORS.validation("a multipart upload is completed with its parts", {
          extra: { field: "parts" },
        });
      }
      if (!(await locateUpload(this.store, image))) {
        await this.checkParts(image, parts);
        const key = uploadKey(image.id);
        await this.store.completeMultipartUpload(key, image.multipartUploadId as string, parts);
      }
    } else if (!(await locateUpload(this.store, image))) {
      throw ERRORS.uploadIncomplete("the storage has no object for this upload yet; upload it first");
    }
    await this.jobs.enqueue({
      kind: PROCESS_IMAGE,
      key: processJobKey(image.id),
      payload: { imageId: image.id },
      group: image.ownerId,
    });
    return (await this.images.findById(image.id)) ?? image;
  }

  /**
   * The parts named must be every part of the declared size, each exactly as large as it was signed
   * for: part URLs pin their size, so this only fails on a missing or foreign part, before the
   * storage assembles an object of another size than the intent declared.
   */
  private async checkParts(image: ImageRecord, named: { partNumber: number }[]): Promise<void> {
    const partSize = image.multipartPartSize as number;
    const partCount = Math.ceil(image.declaredSize / partSize);
    const stored = new Map(
      (await this.store.listParts(uploadKey(image.id), image.multipartUploadId as string)).map((p) => [
        p.partNumber,
        p.size,
      ]),
    );
    const problems: string[] = [];
    if (named.length !== partCount) problems.push(`${partCount} parts expected, ${named.length} named`);
    for (let n = 1; n <= partCount && problems.length < 5; n++) {
      const want = partLength(image.declaredSize, partSize, n);
      const got = stored.get(n);
      if (got === undefined) problems.push(`part ${n} is missing`);
      else if (got !== want) problems.push(`part ${n} has ${got} bytes, ${want} expected`);
    }
    if (problems.length > 0) {
      throw ERRORS.uploadIncomplete(
        `the parts do not add up to the declared ${image.declaredSize} bytes: ${problems.join("; ")}`,
      );
    }
  }

  /** Abandons an intent that was not uploaded yet (and its multipart upload). */
  async abort(principal: Principal, id: string): Promise<void> {
    const image = await this.owned(principal, id);
    if (image.status !== "pending") {
      throw ERRORS.conflict(`the upload is ${image.status}; delete the image with DELETE /v1/images/${id}`);
    }
    if (image.multipartUploadId) {
      await this.store.abortMultipartUpload(uploadKey(image.id), image.multipartUploadId).catch((err) => {
        if ((err as { code?: string }).code !== "no_such_upload") throw err;
      });
    }
    const aborted = await this.images.transition(image.id, ["pending"], "deleted", { deletedAt: new Date() });
    if (!aborted) throw ERRORS.conflict("the upload finished while it was being aborted");
    // A PUT that raced the abort may have landed; the object must not outlive its row.
    await deleteUploadedBytes(this.store, image);
  }

  private async owned(principal: Principal, id: string): Promise<ImageRecord> {
    const image = isImageId(id) ? await this.images.findForOwner(principal.ownerId, id) : null;
    if (!image || image.status === "deleted") throw ERRORS.imageNotFound(`no upload ${id}`);
    return image;
  }

  private async pendingMultipart(principal: Principal, id: string): Promise<ImageRecord> {
    const image = await this.owned(principal, id);
    if (image.uploadMethod !== "multipart" || !image.multipartUploadId || !image.multipartPartSize) {
      throw ERRORS.conflict("this upload is not a multipart upload");
    }
    if (image.status !== "pending") throw ERRORS.conflict(`the upload is already ${image.status}`);
    return image;
  }
}
