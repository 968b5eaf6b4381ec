import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId, originalKey } from "../domain/keys.ts";
import { missingParts, PART_URLS_PER_RESPONSE, planParts } from "../domain/multipart.ts";
import { type IntentInput, type UploadPolicy, validateIntent } from "../domain/upload-policy.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { ObjectStore, PresignedRequest, UploadedPart } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import { PROCESS_IMAGE, processJobKey } from "./storage-events.ts";

export type UploadInstructions =
  | { method: "put"; url: string; headers: Record<string, string>; expiresAt: string }
  | { method: "post"; url: string; fields: Record<string, string>; expiresAt: string }
  | {
      method: "multipart";
      uploadId: string;
      partSize: number;
      partCount: number;
      parts: SignedPart[];
      expiresAt: string;
    };

export interface SignedPart {
  partNumber: number;
  url: string;
}

export interface IntentResult {
  image: ImageRecord;
  upload: UploadInstructions;
}

export interface PartsStatus {
  uploadId: string;
  partSize: number;
  partCount: number;
  uploaded: UploadedPart[];
  /** Signed URLs for the next parts not uploaded yet (at most 100). */
  pending: SignedPart[];
  expiresAt: string;
}

export type UploadsPolicy = UploadPolicy & { urlTtlSeconds: number; multipartPartSize: number };

/**
 * Upload intents: the client gets URLs to put the bytes straight into the storage. Completion is
 * the storage's event; the client's `complete` is only a hint (and the only way to finish multipart).
 */
export class UploadsService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly jobs: JobQueue,
    private readonly policy: UploadsPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  async createIntent(
    principal: Principal,
    input: IntentInput,
    idempotencyKey?: string,
  ): Promise<IntentResult> {
    const intent = validateIntent(input, this.policy);
    const id = newImageId();
    const key = originalKey(id);
    const ttl = this.policy.urlTtlSeconds;
    const base = {
      id,
      ownerId: principal.ownerId,
      visibility: intent.visibility,
      filename: intent.filename,
      objectKey: key,
      uploadMethod: intent.method,
      declaredContentType: intent.contentType,
      declaredSize: intent.size,
      declaredSha256: intent.sha256,
      idempotencyKey: idempotencyKey ?? null,
    };
    if (intent.method === "multipart") {
      const plan = planParts(intent.size, this.policy.multipartPartSize);
      const { uploadId } = await this.store.createMultipartUpload(key, intent.contentType);
      const expiresAt = new Date(this.now() + ttl * 1000);
      let image: ImageRecord;
      try {
        image = await this.images.insert({
          ...base,
          uploadExpiresAt: expiresAt,
          multipartUploadId: uploadId,
          multipartPartSize: plan.partSize,
        });
      } catch (err) {
        await this.store.abortMultipartUpload(key, uploadId).catch(() => undefined);
        throw err;
      }
      const numbers = missingParts(plan.partCount, [], PART_URLS_PER_RESPONSE);
      const parts = await this.signParts(key, uploadId, numbers);
      return {
        image,
        upload: { method: "multipart", uploadId, ...plan, parts, expiresAt: expiresAt.toISOString() },
      };
    }
    const presigned =
      intent.method === "post"
        ? await this.store.presignPost({
            key,
            contentType: intent.contentType,
            minBytes: intent.size,
            maxBytes: intent.size,
            expiresInSeconds: ttl,
          })
        : await this.store.presignPut({
            key,
            contentType: intent.contentType,
            contentLength: intent.size,
            sha256: intent.sha256 ?? undefined,
            expiresInSeconds: ttl,
          });
    const image = await this.images.insert({
      ...base,
      uploadExpiresAt: presigned.expiresAt,
      multipartUploadId: null,
      multipartPartSize: null,
    });
    return { image, upload: toInstructions(intent.method, presigned) };
  }

  /** Resume support: what the storage already has, and fresh URLs for what is missing. */
  async parts(principal: Principal, id: string): Promise<PartsStatus> {
    const image = await this.pendingMultipart(principal, id);
    const uploadId = image.multipartUploadId as string;
    const partSize = image.multipartPartSize as number;
    const partCount = Math.ceil(image.declaredSize / partSize);
    const uploaded = await this.store.listParts(image.objectKey, uploadId);
    const numbers = missingParts(
      partCount,
      uploaded.map((p) => p.partNumber),
      PART_URLS_PER_RESPONSE,
    );
    const expiresAt = new Date(this.now() + this.policy.urlTtlSeconds * 1000);
    // Signing more parts keeps the intent alive: a 10 GB upload outlasts one URL lifetime.
    await this.images.update(image.id, principal.ownerId, ["pending"], { uploadExpiresAt: expiresAt });
    const pending = await this.signParts(image.objectKey, uploadId, numbers);
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
      const existing = await this.store.head(image.objectKey);
      if (!existing)
        await this.store.completeMultipartUpload(image.objectKey, image.multipartUploadId as string, parts);
    } else if (!(await this.store.head(image.objectKey))) {
      throw ERRORS.uploadIncomplete("the storage has no object for this upload yet; upload it first");
    }
    await this.jobs.enqueue({
      kind: PROCESS_IMAGE,
      key: processJobKey(image.id),
      payload: { imageId: image.id },
    });
    return (await this.images.findById(image.id)) ?? image;
  }

  /** Abandons an intent that was not uploaded yet (and its multipart upload). */
  async abort(principal: Principal, id: string): Promise<void> {
    const image = await this.owned(principal, id);
    if (image.status !== "pending") {
      throw ERRORS.conflict(`the upload is ${image.status}; delete the image with DELETE /v1/images/${id}`);
    }
    if (image.multipartUploadId) {
      await this.store.abortMultipartUpload(image.objectKey, image.multipartUploadId).catch((err) => {
        if ((err as { code?: string }).code !== "no_such_upload") throw err;
      });
    }
    const aborted = await this.images.transition(image.id, ["pending"], "deleted", { deletedAt: new Date() });
    if (!aborted) throw ERRORS.conflict("the upload finished while it was being aborted");
    // A PUT that raced the abort may have landed; the object must not outlive its row.
    await this.store.delete(image.objectKey);
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

  private signParts(key: string, uploadId: string, partNumbers: number[]): Promise<SignedPart[]> {
    return Promise.all(
      partNumbers.map(async (partNumber) => ({
        partNumber,
        url: await this.store.presignUploadPart({
          key,
          uploadId,
          partNumber,
          expiresInSeconds: this.policy.urlTtlSeconds,
        }),
      })),
    );
  }
}

function toInstructions(method: "put" | "post", p: PresignedRequest): UploadInstructions {
  return method === "post"
    ? { method, url: p.url, fields: p.fields, expiresAt: p.expiresAt.toISOString() }
    : { method, url: p.url, headers: p.headers, expiresAt: p.expiresAt.toISOString() };
}
