import { isDatabaseUnavailable } from "../db/breaker.ts";
import { IdempotencyKeyTaken, type ImagesRepository, type NewImage } from "../db/images-repository.ts";
import { ERRORS, isAppError } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageRecord } from "../domain/image.ts";
import { originalKey, uploadKey } from "../domain/keys.ts";
import { missingParts, PART_URLS_PER_RESPONSE, planParts } from "../domain/multipart.ts";
import { limitsFor, type UploadProfile } from "../domain/profiles.ts";
import { QuotaExceededError, type QuotaLimits } from "../domain/quota.ts";
import {
  type IntentInput,
  type UploadPolicy,
  type ValidIntent,
  validateIntent,
} from "../domain/upload-policy.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore, PresignedRequest } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import type { IntentBuffer } from "./intent-buffer.ts";
import { type SignedPart, signParts } from "./part-urls.ts";
import type { ProfileResolver } from "./profiles.ts";
import type { QuotaService } from "./quotas.ts";

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

export type IntentResult =
  /** A new image: upload the bytes as instructed. */
  | { kind: "created"; image: ImageRecord; upload: UploadInstructions }
  /** The owner already has these exact bytes, verified: nothing to upload. */
  | { kind: "deduplicated"; image: ImageRecord }
  /** The Idempotency-Key was used before (found in the database): the same image again. */
  | { kind: "existing"; image: ImageRecord; upload: UploadInstructions | null };

export type UploadsPolicy = UploadPolicy & {
  urlTtlSeconds: number;
  multipartPartSize: number;
  /** Default lifetime of an unclaimed image that requires a claim. */
  claimTtlSeconds?: number;
};

const DEFAULT_CLAIM_TTL_SECONDS = 24 * 3600;

/** Upload intents: the client gets URLs to put the bytes straight into the storage. */
export class UploadsService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly policy: UploadsPolicy,
    private readonly metrics: Metrics,
    /** Where intents go while the database is down; absent, such intents fail with 503. */
    private readonly buffer: IntentBuffer | null,
    private readonly now: () => number = Date.now,
    /** A new upload URL was handed out (the API's /readyz then expects a storage event). */
    private readonly onIssued: () => void = () => {},
    /** Upload profiles an intent may name; absent, every profile is unknown. */
    private readonly profiles: ProfileResolver | null = null,
    /** Per-owner quotas, checked before any URL is issued; absent: unlimited. */
    private readonly quotas: QuotaService | null = null,
  ) {}

  async createIntent(
    principal: Principal,
    input: IntentInput,
    idempotencyKey?: string,
  ): Promise<IntentResult> {
    const profile = input.profile === undefined ? null : await this.resolveProfile(input.profile);
    const rules = profileRules(this.policy, profile, input);
    const intent = validateIntent(input, rules.policy);
    // A profile or a claim makes a new image with its own rules; an old image matching the bytes
    // was never checked against them, and would not expire.
    const dedup = profile || rules.claimRequired || !intent.sha256 ? null : intent.sha256;
    // Put and post: the lookup goes with the insert in one statement (one round trip); the URL
    // signed before it is only an HMAC, thrown away on a dedup. Multipart: a dedup must not cost
    // a multipart upload created in the storage, so the lookup comes first.
    const withInsert = dedup !== null && intent.method !== "multipart";
    if (dedup !== null && !withInsert) {
      const duplicate = await this.findDuplicate(principal, intent);
      if (duplicate) return this.deduplicated(duplicate);
    }
    let limits: QuotaLimits | null = null;
    try {
      limits = (await this.quotas?.check(principal.ownerId, intent.size)) ?? null;
    } catch (err) {
      if (isAppError(err) && err.code === "quota_exceeded") {
        // A dedup adds nothing to the usage: the same bytes are answered even over the quota.
        const duplicate = withInsert ? await this.findDuplicate(principal, intent) : null;
        if (duplicate) return this.deduplicated(duplicate);
        return this.quotaRefused(principal, intent, idempotencyKey, err);
      }
      throw err;
    }
    const id = newImageId();
    const { upload, extra } = await this.prepareUpload(id, intent);
    const newImage: NewImage = {
      id,
      ownerId: principal.ownerId,
      visibility: intent.visibility,
      filename: intent.filename,
      objectKey: originalKey(id),
      uploadMethod: intent.method,
      declaredContentType: intent.contentType,
      declaredSize: intent.size,
      declaredSha256: intent.sha256,
      idempotencyKey: idempotencyKey ?? null,
      uploadExpiresAt: new Date(upload.expiresAt),
      ...extra,
      ...this.claimOf(rules.claimRequired, profile?.claimTtlSeconds ?? null),
      profile: profile?.name ?? null,
      profileLimits: profile ? rules.limits : null,
    };
    try {
      let image: ImageRecord;
      if (withInsert) {
        const r = await this.images.insertUnlessDuplicate(
          newImage,
          { sha256: dedup, visibility: intent.visibility },
          limits,
        );
        if (r.outcome === "duplicate") return this.deduplicated(r.image);
        image = r.image;
      } else {
        image = await this.images.insert(newImage, limits);
      }
      this.metrics.intentsCreated.inc({ method: intent.method });
      this.onIssued();
      return { kind: "created", image, upload };
    } catch (err) {
      if (err instanceof QuotaExceededError && this.quotas) {
        // A parallel intent took the room between the check and the insert: nothing is handed out.
        if (upload.method === "multipart")
          await this.store.abortMultipartUpload(uploadKey(id), upload.uploadId).catch(() => undefined);
        return this.quotaRefused(principal, intent, idempotencyKey, this.quotas.refused(err.refusal));
      }
      if (err instanceof IdempotencyKeyTaken && idempotencyKey) {
        if (upload.method === "multipart")
          await this.store.abortMultipartUpload(uploadKey(newImage.id), upload.uploadId);
        return this.existing(principal, idempotencyKey, intent);
      }
      if (this.buffer && isDatabaseUnavailable(err)) {
        // Nowhere to keep it (the KV is down or too slow as well): the client must retry, told so.
        const buffered = await this.buffer.add(newImage).then(
          () => true,
          () => false,
        );
        if (!buffered) {
          if (upload.method === "multipart") {
            await this.store
              .abortMultipartUpload(uploadKey(newImage.id), upload.uploadId)
              .catch(() => undefined);
          }
          throw ERRORS.unavailable(
            "the metadata database is unreachable and the intent could not be buffered",
            RETRY_SOON,
          );
        }
        this.metrics.intentsCreated.inc({ method: intent.method });
        this.onIssued();
        return { kind: "created", image: pendingRecord(newImage, this.now()), upload };
      }
      if (upload.method === "multipart") {
        await this.store.abortMultipartUpload(uploadKey(newImage.id), upload.uploadId).catch(() => undefined);
      }
      if (isDatabaseUnavailable(err))
        throw ERRORS.unavailable("the metadata database is unreachable", RETRY_SOON);
      throw err;
    }
  }

  /**
   * An Idempotency-Key replay: the image the first answer named, as it is now, with fresh upload
   * URLs while it is still pending (the first ones may have lapsed).
   */
  async replay(principal: Principal, imageId: string, key: string): Promise<IntentResult> {
    const image = await this.images.findForOwner(principal.ownerId, imageId);
    if (!image || image.status === "deleted") throw ERRORS.imageNotFound(`image ${imageId} was deleted`);
    // The first answer pointed at an image another request made: it was a dedup.
    if (image.idempotencyKey !== key) return { kind: "deduplicated", image };
    if (image.status !== "pending") return { kind: "existing", image, upload: null };
    return { kind: "existing", image, upload: await this.reissue(image) };
  }

  private deduplicated(image: ImageRecord): IntentResult {
    this.metrics.dedupHits.inc();
    return { kind: "deduplicated", image };
  }

  private async resolveProfile(name: string): Promise<UploadProfile> {
    if (!this.profiles) throw ERRORS.unknownProfile(`no upload profile "${name.slice(0, 70)}"`);
    return this.profiles.resolve(name);
  }

  /** The claim deadline of a new image, when it requires a claim. */
  private claimOf(required: boolean, ttlSeconds: number | null) {
    const ttl = ttlSeconds ?? this.policy.claimTtlSeconds ?? DEFAULT_CLAIM_TTL_SECONDS;
    return {
      claimRequired: required,
      claimExpiresAt: required ? new Date(this.now() + ttl * 1000) : null,
    };
  }

  /**
   * A retry of an intent that was created (its Idempotency-Key is in the database) gets that image
   * again: its reservation is already counted. Anything else gets the refusal.
   */
  private async quotaRefused(
    principal: Principal,
    intent: ValidIntent,
    idempotencyKey: string | undefined,
    refusal: Error,
  ): Promise<IntentResult> {
    if (idempotencyKey) {
      const prior = await this.images
        .findByIdempotencyKey(principal.ownerId, idempotencyKey)
        .catch(() => null);
      if (prior) return this.existing(principal, idempotencyKey, intent);
    }
    throw refusal;
  }

  /** Dedup without an existence oracle: only this owner's ready images, whose hash the worker computed. */
  private async findDuplicate(principal: Principal, intent: ValidIntent): Promise<ImageRecord | null> {
    if (!intent.sha256) return null;
    try {
      return await this.images.findReadyBySha256(principal.ownerId, intent.sha256, intent.visibility);
    } catch (err) {
      if (isDatabaseUnavailable(err)) return null; // an upload instead of a dedup is harmless
      throw err;
    }
  }

  /** The KV forgot the Idempotency-Key but the database did not: answer with the same image. */
  private async existing(principal: Principal, key: string, intent: ValidIntent): Promise<IntentResult> {
    const image = await this.images.findByIdempotencyKey(principal.ownerId, key);
    if (!image) throw ERRORS.conflict("the Idempotency-Key is being used by a request that has not finished");
    const same =
      image.filename === intent.filename &&
      image.declaredContentType === intent.contentType &&
      image.declaredSize === intent.size &&
      image.declaredSha256 === intent.sha256 &&
      image.uploadMethod === intent.method;
    if (!same)
      throw ERRORS.idempotencyKeyReused("this Idempotency-Key was used with a different request body");
    if (image.status !== "pending") return { kind: "existing", image, upload: null };
    return { kind: "existing", image, upload: await this.reissue(image) };
  }

  /** Fresh upload instructions for a pending image (the old URLs may have lapsed). */
  private async reissue(image: ImageRecord): Promise<UploadInstructions> {
    if (image.uploadMethod === "multipart" && image.multipartUploadId && image.multipartPartSize) {
      const partCount = Math.ceil(image.declaredSize / image.multipartPartSize);
      const uploaded = await this.store.listParts(uploadKey(image.id), image.multipartUploadId);
      const numbers = missingParts(
        partCount,
        uploaded.map((p) => p.partNumber),
        PART_URLS_PER_RESPONSE,
      );
      return {
        method: "multipart",
        uploadId: image.multipartUploadId,
        partSize: image.multipartPartSize,
        partCount,
        parts: await signParts(
          this.store,
          {
            key: uploadKey(image.id),
            uploadId: image.multipartUploadId,
            size: image.declaredSize,
            partSize: image.multipartPartSize,
          },
          numbers,
          this.policy.urlTtlSeconds,
        ),
        expiresAt: new Date(this.now() + this.policy.urlTtlSeconds * 1000).toISOString(),
      };
    }
    const method = image.uploadMethod === "post" ? "post" : "put";
    return (
      await this.prepareUpload(image.id, {
        filename: image.filename,
        contentType: image.declaredContentType,
        size: image.declaredSize,
        sha256: image.declaredSha256,
        visibility: image.visibility,
        method,
        partSize: null,
      })
    ).upload;
  }

  private async prepareUpload(
    id: string,
    intent: ValidIntent,
  ): Promise<{
    upload: UploadInstructions;
    extra: Pick<NewImage, "multipartUploadId" | "multipartPartSize">;
  }> {
    const key = uploadKey(id);
    const ttl = this.policy.urlTtlSeconds;
    if (intent.method === "multipart") {
      // The client's part size as given (validated); else the configured one.
      const plan = intent.partSize
        ? { partSize: intent.partSize, partCount: Math.ceil(intent.size / intent.partSize) }
        : planParts(intent.size, this.policy.multipartPartSize);
      const { uploadId } = await this.store.createMultipartUpload(key, intent.contentType);
      const numbers = missingParts(plan.partCount, [], PART_URLS_PER_RESPONSE);
      const upload = { key, uploadId, size: intent.size, partSize: plan.partSize };
      const parts = await signParts(this.store, upload, numbers, ttl);
      const expiresAt = new Date(this.now() + ttl * 1000).toISOString();
      return {
        upload: { method: "multipart", uploadId, ...plan, parts, expiresAt },
        extra: { multipartUploadId: uploadId, multipartPartSize: plan.partSize },
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
    return {
      upload: toInstructions(intent.method, presigned),
      extra: { multipartUploadId: null, multipartPartSize: null },
    };
  }
}

const RETRY_SOON = { headers: { "Retry-After": "5" } };

/**
 * The first of the profile's three checks: the intent is validated against the deployment policy
 * narrowed by the profile, so nothing over its size or outside its types gets a URL, and the URL
 * signs the declared size and type (the second check). The limits go on the row for the worker.
 */
function profileRules(policy: UploadsPolicy, profile: UploadProfile | null, input: IntentInput) {
  const limits = limitsFor({ ...policy, maxPixels: Number.MAX_SAFE_INTEGER }, profile);
  if (profile?.visibility && input.visibility && input.visibility !== profile.visibility) {
    throw ERRORS.validation(`profile ${profile.name} uploads are ${profile.visibility}`, {
      extra: { field: "visibility", profile: profile.name },
    });
  }
  return {
    policy: {
      ...policy,
      maxBytes: limits.maxBytes,
      allowedTypes: limits.allowedTypes,
      defaultVisibility: profile?.visibility ?? policy.defaultVisibility,
    },
    limits,
    claimRequired: input.claim === true || profile?.claimRequired === true,
  };
}

function toInstructions(method: "put" | "post", p: PresignedRequest): UploadInstructions {
  return method === "post"
    ? { method, url: p.url, fields: p.fields, expiresAt: p.expiresAt.toISOString() }
    : { method, url: p.url, headers: p.headers, expiresAt: p.expiresAt.toISOString() };
}

/** What the row of a new intent looks like (also what a buffered intent's row will be once replayed). */
export function pendingRecord(image: NewImage, now: number): ImageRecord {
  const at = new Date(now);
  return {
    ...image,
    status: "pending",
    contentType: null,
    size: null,
    width: null,
    height: null,
    format: null,
    sha256: null,
    placeholder: null,
    rejectReason: null,
    rejectDetail: null,
    createdAt: at,
    updatedAt: at,
    readyAt: null,
    deletedAt: null,
    claimRequired: image.claimRequired ?? false,
    claimExpiresAt: image.claimExpiresAt ?? null,
    claimedAt: null,
    ref: null,
    profile: image.profile ?? null,
    profileLimits: image.profileLimits ?? null,
  };
}
