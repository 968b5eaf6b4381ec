import { pipeline, type Readable } from "node:stream";
import type { Logger } from "pino";
import { isDatabaseUnavailable } from "../db/breaker.ts";
import { IdempotencyKeyTaken, type ImagesRepository, type NewImage } from "../db/images-repository.ts";
import { ERRORS, isAppError } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageRecord, ImageStatus, Visibility } from "../domain/image.ts";
import { imagePrefix, originalKey, uploadKey } from "../domain/keys.ts";
import { QuotaExceededError, type QuotaLimits } from "../domain/quota.ts";
import { SNIFF_BYTES, sniff } from "../domain/sniff.ts";
import { type UploadPolicy, type ValidIntent, validateIntent } from "../domain/upload-policy.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import type { ProxyUploadMetrics } from "./proxy-upload-metrics.ts";
import type { QuotaService } from "./quotas.ts";
import { DELETE_IMAGE_OBJECTS, PROCESS_IMAGE, processJobKey } from "./storage-events.ts";
import { UploadMeter } from "./upload-meter.ts";

/** A body whose type the client did not name: its first bytes decide. */
export const UNTYPED = "application/octet-stream";

export interface ProxyUploadInput {
  /** The declared type: image/…, or application/octet-stream to let the bytes say. */
  contentType: string;
  filename?: string;
  sha256?: string;
  visibility?: Visibility;
  /** The exact body length, when the client declared one (a raw body with Content-Length). */
  declaredLength?: number;
  /**
   * Starts reading the bytes; called only once everything that can be refused without reading
   * was checked. The service destroys the stream when it stops early; the caller then stops
   * reading the request.
   */
  open(): Readable;
  /** Checks what came after the bytes (a form's tail); a failure discards the stored image. */
  afterBody?: () => Promise<void>;
}

export type ProxyUploadResult =
  | { kind: "created"; image: ImageRecord }
  /** The Idempotency-Key's image, found in the database because the KV forgot the key. */
  | { kind: "existing"; image: ImageRecord };

export type ProxyUploadPolicy = UploadPolicy & { urlTtlSeconds: number };

const LIVE: readonly ImageStatus[] = ["pending", "processing", "ready", "rejected", "expired", "held"];

/**
 * Proxy (server) upload for clients that cannot upload to the storage themselves. The body is
 * streamed to the storage, counted, capped and hashed on the way and never held whole; then the
 * image takes the direct upload's path (the worker validates it and its hash is the truth).
 * A refused or interrupted upload leaves neither an object nor a visible row behind.
 */
export class ProxyUploadService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly jobs: JobQueue,
    private readonly policy: ProxyUploadPolicy,
    private readonly metrics: ProxyUploadMetrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Per-owner quotas, checked before the body is read; absent: unlimited. */
    private readonly quotas: QuotaService | null = null,
  ) {}

  async upload(
    principal: Principal,
    input: ProxyUploadInput,
    idempotencyKey?: string,
  ): Promise<ProxyUploadResult> {
    try {
      const result = await this.receive(principal, input, idempotencyKey);
      this.metrics.uploads.inc({ outcome: result.kind });
      return result;
    } catch (err) {
      this.metrics.uploads.inc({ outcome: isAppError(err) ? err.code : "error" });
      throw err;
    }
  }

  private async receive(
    principal: Principal,
    input: ProxyUploadInput,
    idempotencyKey: string | undefined,
  ): Promise<ProxyUploadResult> {
    const declared = input.declaredLength;
    if (declared === 0) throw ERRORS.validation("the body is empty: send the image bytes");
    if (declared !== undefined && declared > this.policy.maxBytes) {
      throw ERRORS.payloadTooLarge(
        `Content-Length ${declared} exceeds the limit of ${this.policy.maxBytes} bytes`,
        {
          extra: { maxBytes: this.policy.maxBytes },
        },
      );
    }
    const untyped = input.contentType === UNTYPED;
    let intent = untyped ? null : this.validate(input, input.contentType);
    // A body of unknown length may be as large as the upload limit: that much is reserved.
    const reserved = declared ?? this.policy.maxBytes;
    const limits = (await this.quotas?.check(principal.ownerId, reserved)) ?? null;

    const meter = new UploadMeter({
      limit: this.policy.maxBytes,
      headBytes: untyped ? SNIFF_BYTES : 0,
      onBytes: (n) => this.metrics.bytesRead.inc(n),
    });
    // Errors reach the storage write through the meter; the callback only keeps them handled.
    pipeline(input.open(), meter, () => undefined);
    try {
      intent ??= this.validate(input, typeOf(await meter.head));
      if (intent.sha256) meter.expectSha256(intent.sha256);
      const row = await this.insert(principal, intent, declared, idempotencyKey, { reserved, limits });
      if (row.kind === "existing") {
        meter.destroy(); // a retry: the body is not needed
        return row;
      }
      await this.write(row.image, meter, intent, input);
      return { kind: "created", image: await this.queueProcessing(row.image) };
    } catch (err) {
      meter.destroy();
      throw err;
    }
  }

  private validate(input: ProxyUploadInput, contentType: string): ValidIntent {
    const intent = validateIntent(
      {
        filename: input.filename ?? "upload",
        contentType,
        // Only a declared length can be checked up front; the meter enforces the limit on the rest.
        size: input.declaredLength ?? 1,
        sha256: input.sha256,
        visibility: input.visibility,
      },
      this.policy,
    );
    if (input.filename === undefined) intent.filename = `upload.${extensionOf(intent.contentType)}`;
    return intent;
  }

  private async insert(
    principal: Principal,
    intent: ValidIntent,
    declaredLength: number | undefined,
    idempotencyKey: string | undefined,
    quota: { reserved: number; limits: QuotaLimits | null },
  ): Promise<ProxyUploadResult> {
    const id = newImageId();
    const row: NewImage = {
      id,
      ownerId: principal.ownerId,
      visibility: intent.visibility,
      filename: intent.filename,
      objectKey: originalKey(id),
      uploadMethod: "proxy",
      declaredContentType: intent.contentType,
      // 0: the client declared no length (chunked or multipart); the worker records the real size.
      declaredSize: declaredLength ?? 0,
      declaredSha256: intent.sha256,
      idempotencyKey: idempotencyKey ?? null,
      // A process that dies mid-body leaves the row pending; the reconciler expires it after this.
      uploadExpiresAt: new Date(this.now() + this.policy.urlTtlSeconds * 1000),
      multipartUploadId: null,
      multipartPartSize: null,
      reservedBytes: quota.reserved,
    };
    try {
      try {
        return { kind: "created", image: await this.images.insert(row, quota.limits) };
      } catch (err) {
        if (err instanceof QuotaExceededError && this.quotas) throw this.quotas.refused(err.refusal);
        if (!(err instanceof IdempotencyKeyTaken && idempotencyKey)) throw err;
        const existing = await this.existing(principal, idempotencyKey, row);
        if (existing) return { kind: "existing", image: existing };
        // The key's earlier attempt failed and was discarded, so this retry is a new image; the
        // database holds a key once, so from here only the KV guards it.
        return {
          kind: "created",
          image: await this.images.insert({ ...row, idempotencyKey: null }, quota.limits),
        };
      }
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        throw ERRORS.unavailable("the metadata database is unreachable", { headers: { "Retry-After": "5" } });
      }
      throw err;
    }
  }

  /** The KV forgot the Idempotency-Key but the database did not. null: its attempt left nothing. */
  private async existing(principal: Principal, key: string, row: NewImage): Promise<ImageRecord | null> {
    const image = await this.images.findByIdempotencyKey(principal.ownerId, key);
    if (!image) throw ERRORS.conflict("the Idempotency-Key is being used by a request that has not finished");
    if (image.status === "deleted" || image.status === "expired") return null;
    const same =
      image.uploadMethod === "proxy" &&
      image.filename === row.filename &&
      image.declaredContentType === row.declaredContentType &&
      image.declaredSize === row.declaredSize &&
      image.declaredSha256 === row.declaredSha256 &&
      image.visibility === row.visibility;
    if (!same) throw ERRORS.idempotencyKeyReused("this Idempotency-Key was used with a different request");
    if (image.status === "pending") {
      throw ERRORS.idempotencyInProgress("the first request with this key is still running", {
        headers: { "Retry-After": "1" },
      });
    }
    return image;
  }

  private async write(
    image: ImageRecord,
    meter: UploadMeter,
    intent: ValidIntent,
    input: ProxyUploadInput,
  ): Promise<void> {
    let stored = false;
    try {
      await this.store.put(uploadKey(image.id), meter, {
        contentType: intent.contentType,
        contentLength: input.declaredLength,
      });
      stored = true;
      await input.afterBody?.();
    } catch (err) {
      await this.discard(image, stored);
      // The meter knows why the bytes stopped (limit, hash, client gone); the storage only saw them stop.
      throw meter.failure ?? err;
    }
  }

  /** Nothing half-made lingers: the row leaves the owner's view and the bytes are deleted. */
  private async discard(image: ImageRecord, stored: boolean): Promise<void> {
    try {
      await this.images.transition(image.id, LIVE, "deleted", { deletedAt: new Date() });
      await this.store.delete(uploadKey(image.id));
      if (stored) {
        // The upload's storage event may have started a worker that made variants meanwhile.
        await this.jobs.requeue({
          kind: DELETE_IMAGE_OBJECTS,
          key: `delete:${image.id}`,
          payload: { imageId: image.id, prefix: imagePrefix(image.id) },
        });
      }
    } catch (err) {
      // The reconciler expires a pending row, and the sweep deletes an object nothing live owns.
      this.log.warn({ err, imageId: image.id }, "could not discard a failed proxy upload");
    }
  }

  /** The direct upload's path from here: the storage event, or this, queues one processing job. */
  private async queueProcessing(image: ImageRecord): Promise<ImageRecord> {
    try {
      await this.jobs.enqueue({
        kind: PROCESS_IMAGE,
        key: processJobKey(image.id),
        payload: { imageId: image.id },
        group: image.ownerId,
      });
      return (await this.images.findById(image.id)) ?? image;
    } catch (err) {
      // The bytes are stored: the reconciler queues processing once the upload window lapsed.
      this.log.warn({ err, imageId: image.id }, "could not queue processing of a proxy upload");
      return image;
    }
  }
}

function typeOf(head: Buffer): string {
  if (head.length === 0) throw ERRORS.validation("the body is empty: send the image bytes");
  const sniffed = sniff(head);
  if (sniffed.kind !== "image") {
    throw ERRORS.unsupportedMediaType(
      "the body is not a known image format; send an image with its Content-Type (image/…)",
    );
  }
  return sniffed.mime;
}

function extensionOf(contentType: string): string {
  const subtype = contentType.slice(contentType.indexOf("/") + 1);
  return subtype === "jpeg" ? "jpg" : subtype;
}
