import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageRecord } from "../domain/image.ts";
import { originalKey } from "../domain/keys.ts";
import { type IntentInput, type UploadPolicy, validateIntent } from "../domain/upload-policy.ts";
import type { ObjectStore, PresignedRequest } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";

export interface UploadInstructions {
  method: "put" | "post";
  url: string;
  headers?: Record<string, string>;
  fields?: Record<string, string>;
  expiresAt: string;
}

export interface IntentResult {
  image: ImageRecord;
  upload: UploadInstructions;
}

/** Upload intents: the client gets a URL to put the bytes straight into the storage. */
export class UploadsService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly policy: UploadPolicy & { urlTtlSeconds: number },
  ) {}

  async createIntent(
    principal: Principal,
    input: IntentInput,
    idempotencyKey?: string,
  ): Promise<IntentResult> {
    const intent = validateIntent(input, this.policy);
    if (intent.method === "multipart") {
      throw ERRORS.validation("multipart uploads are not available on this deployment yet", {
        extra: { field: "method" },
      });
    }
    const id = newImageId();
    const key = originalKey(id);
    const presigned =
      intent.method === "post"
        ? await this.store.presignPost({
            key,
            contentType: intent.contentType,
            minBytes: intent.size,
            maxBytes: intent.size,
            expiresInSeconds: this.policy.urlTtlSeconds,
          })
        : await this.store.presignPut({
            key,
            contentType: intent.contentType,
            contentLength: intent.size,
            sha256: intent.sha256 ?? undefined,
            expiresInSeconds: this.policy.urlTtlSeconds,
          });
    const image = await this.images.insert({
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
      uploadExpiresAt: presigned.expiresAt,
      multipartUploadId: null,
    });
    return { image, upload: toInstructions(intent.method, presigned) };
  }
}

function toInstructions(method: "put" | "post", p: PresignedRequest): UploadInstructions {
  return method === "post"
    ? { method, url: p.url, fields: p.fields, expiresAt: p.expiresAt.toISOString() }
    : { method, url: p.url, headers: p.headers, expiresAt: p.expiresAt.toISOString() };
}
