import { type Selectable, sql } from "kysely";
import type { ImageRecord, ImageStatus, RejectReason, UploadMethod, Visibility } from "../domain/image.ts";
import { parseLimits } from "../domain/profiles.ts";
import { hasLimits, QuotaExceededError, type QuotaLimits, quotaVerdict } from "../domain/quota.ts";
import { eventForStatus, type OutboxEventType } from "../domain/webhook-events.ts";
import {
  type DuplicateOf,
  type InsertUnlessDuplicateResult,
  insertUnlessDuplicate,
} from "./insert-unless-duplicate.ts";
import { lockUsage } from "./owner-usage-stripes.ts";
import type { Db, ImagesTable } from "./schema.ts";

export type { DuplicateOf, InsertUnlessDuplicateResult };

export type NewImage = Pick<
  ImageRecord,
  | "id"
  | "ownerId"
  | "visibility"
  | "filename"
  | "objectKey"
  | "uploadMethod"
  | "declaredContentType"
  | "declaredSize"
  | "declaredSha256"
  | "idempotencyKey"
  | "uploadExpiresAt"
  | "multipartUploadId"
  | "multipartPartSize"
> &
  Partial<Pick<ImageRecord, "claimRequired" | "claimExpiresAt" | "profile" | "profileLimits">> & {
    /** What the upload may add to the owner's usage while in flight; the declared size when absent. */
    reservedBytes?: number;
  };

/** Fields a transition may set alongside the status. */
export type ImagePatch = Partial<
  Pick<
    ImageRecord,
    | "contentType"
    | "size"
    | "width"
    | "height"
    | "format"
    | "sha256"
    | "placeholder"
    | "rejectReason"
    | "rejectDetail"
    | "readyAt"
    | "deletedAt"
    | "visibility"
    | "uploadExpiresAt"
  >
> & {
  /** Bytes of the metadata-stripped public copy (counted with the original in the owner's usage). */
  publicBytes?: number;
};

/** The owner already used this Idempotency-Key for another image. */
export class IdempotencyKeyTaken extends Error {
  override name = "IdempotencyKeyTaken";
}

/** What replaying a buffered intent did. */
export type InsertIfAbsentResult =
  | { outcome: "inserted" }
  /** A row with this id exists: the intent was replayed before (a crash between insert and delete). */
  | { outcome: "exists" }
  /** Another image holds a unique value of this one (its idempotency key): nothing was written. */
  | { outcome: "conflict"; constraint: string; existingId: string | null };

export interface ListOptions {
  limit: number;
  /** Keyset pagination: only ids below this one. */
  before?: string | undefined;
  statuses?: readonly ImageStatus[] | undefined;
  /** Only images claimed with exactly this reference. */
  ref?: string | undefined;
  /** Only images whose reference starts with this. */
  refPrefix?: string | undefined;
}

export interface TransitionOptions {
  /** The event to emit instead of the status's own (e.g. image.expired for an unclaimed image deleted). */
  event?: OutboxEventType;
}

export interface ImagesRepository {
  /**
   * Throws IdempotencyKeyTaken when (owner, idempotencyKey) exists. With limits, the owner's usage
   * is read under its row lock in the insert's transaction, so parallel intents cannot overshoot
   * them: QuotaExceededError when the new image would not fit.
   */
  insert(image: NewImage, limits?: QuotaLimits | null): Promise<ImageRecord>;
  /**
   * The dedup lookup (findReadyBySha256) and, when it finds nothing, insert: one round trip
   * without quota limits. Same errors as insert.
   */
  insertUnlessDuplicate(
    image: NewImage,
    dup: DuplicateOf,
    limits?: QuotaLimits | null,
  ): Promise<InsertUnlessDuplicateResult>;
  /** Replays a buffered intent: inserts unless a row with that id exists; reports other conflicts. */
  insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult>;
  /** A ready image of this owner whose hash the worker computed; the dedup target. */
  findReadyBySha256(ownerId: string, sha256: string, visibility: Visibility): Promise<ImageRecord | null>;
  findById(id: string): Promise<ImageRecord | null>;
  /** Scoped to the owner: another owner's image is simply not found. */
  findForOwner(ownerId: string, id: string): Promise<ImageRecord | null>;
  findByIdempotencyKey(ownerId: string, key: string): Promise<ImageRecord | null>;
  /** Newest first; `before` is the id of the last image of the previous page. */
  /** Newest first, never deleted ones; `statuses` narrows to those states. */
  listForOwner(ownerId: string, opts: ListOptions): Promise<ImageRecord[]>;
  /**
   * Conditional update: only when the current status is one of `from`. null when it was not. A move
   * into ready, rejected, deleted or expired writes its app-facing event (image.<status>, or
   * `opts.event`) to the outbox in the same statement.
   */
  transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch?: ImagePatch,
    opts?: TransitionOptions,
  ): Promise<ImageRecord | null>;
  /** Updates fields without a status change, only while the status is one of `when`. */
  update(
    id: string,
    ownerId: string,
    when: readonly ImageStatus[],
    patch: ImagePatch,
  ): Promise<ImageRecord | null>;
  ping(): Promise<void>;
}

export class KyselyImagesRepository implements ImagesRepository {
  constructor(private readonly db: Db) {}

  async insert(image: NewImage, limits?: QuotaLimits | null): Promise<ImageRecord> {
    try {
      if (!limits || !hasLimits(limits)) return await insertRow(this.db, image);
      return await this.db.transaction().execute(async (trx) => {
        const usage = await lockUsage(trx, image.ownerId);
        const refusal = quotaVerdict(usage, limits, image.reservedBytes ?? image.declaredSize);
        if (refusal) throw new QuotaExceededError(refusal);
        return insertRow(trx, image);
      });
    } catch (err) {
      throw keyTakenOr(err, image);
    }
  }

  async insertUnlessDuplicate(
    image: NewImage,
    dup: DuplicateOf,
    limits?: QuotaLimits | null,
  ): Promise<InsertUnlessDuplicateResult> {
    // With limits the insert reads the owner's usage under its row lock in a transaction.
    if (limits && hasLimits(limits)) {
      const found = await this.findReadyBySha256(image.ownerId, dup.sha256, dup.visibility);
      if (found) return { outcome: "duplicate", image: found };
      return { outcome: "inserted", image: await this.insert(image, limits) };
    }
    try {
      return await insertUnlessDuplicate(this.db, image, dup, toRecord);
    } catch (err) {
      throw keyTakenOr(err, image);
    }
  }

  async insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult> {
    try {
      const r = await this.db
        .insertInto("images")
        .values(toInsert(image))
        // Only the id is the replay's own conflict; any other unique index still raises.
        .onConflict((oc) => oc.column("id").doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0 ? { outcome: "inserted" } : { outcome: "exists" };
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code !== "23505") throw err;
      const constraint = e.constraint ?? "unique";
      const existing =
        image.idempotencyKey !== null && constraint.includes("idempotency_key")
          ? await this.findByIdempotencyKey(image.ownerId, image.idempotencyKey)
          : null;
      return { outcome: "conflict", constraint, existingId: existing?.id ?? null };
    }
  }

  async findReadyBySha256(
    ownerId: string,
    sha256: string,
    visibility: Visibility,
  ): Promise<ImageRecord | null> {
    const row = await this.db
      .selectFrom("images")
      .selectAll()
      .where("owner_id", "=", ownerId)
      .where("sha256", "=", sha256)
      .where("status", "=", "ready")
      .where("visibility", "=", visibility)
      .orderBy("id", "desc")
      .limit(1)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async findById(id: string): Promise<ImageRecord | null> {
    const row = await this.db.selectFrom("images").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async findForOwner(ownerId: string, id: string): Promise<ImageRecord | null> {
    const row = await this.db
      .selectFrom("images")
      .selectAll()
      .where("id", "=", id)
      .where("owner_id", "=", ownerId)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async findByIdempotencyKey(ownerId: string, key: string): Promise<ImageRecord | null> {
    const row = await this.db
      .selectFrom("images")
      .selectAll()
      .where("owner_id", "=", ownerId)
      .where("idempotency_key", "=", key)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async listForOwner(ownerId: string, opts: ListOptions): Promise<ImageRecord[]> {
    let q = this.db
      .selectFrom("images")
      .selectAll()
      .where("owner_id", "=", ownerId)
      .where("status", "!=", "deleted")
      .orderBy("id", "desc")
      .limit(opts.limit);
    if (opts.before) q = q.where("id", "<", opts.before);
    if (opts.statuses && opts.statuses.length > 0) q = q.where("status", "in", [...opts.statuses]);
    if (opts.ref !== undefined) q = q.where("ref", "=", opts.ref);
    if (opts.refPrefix !== undefined) q = q.where(sql<boolean>`starts_with(ref, ${opts.refPrefix})`);
    return (await q.execute()).map(toRecord);
  }

  async transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch: ImagePatch = {},
    opts: TransitionOptions = {},
  ): Promise<ImageRecord | null> {
    const move = (db: Db) =>
      db
        .updateTable("images")
        .set({ ...toColumns(patch), status: to, updated_at: new Date() })
        .where("id", "=", id)
        .where("status", "in", [...from])
        .returningAll();
    const event = opts.event ?? eventForStatus(to);
    if (!event) {
      const row = await move(this.db).executeTakeFirst();
      return row ? toRecord(row) : null;
    }
    // One statement: the transition and its event commit together, without a transaction's round trips.
    const row = await this.db
      .with("moved", (db) => move(db as unknown as Db))
      .with("outbox_written", (db) =>
        db
          .insertInto("outbox_events")
          .columns(["type", "owner_id", "image_id", "snapshot"])
          .expression((eb) =>
            eb
              .selectFrom("moved")
              .select([
                sql.lit(event).as("type"),
                "moved.owner_id",
                "moved.id",
                sql<string>`to_jsonb(moved)`.as("snapshot"),
              ]),
          ),
      )
      .selectFrom("moved")
      .selectAll()
      .executeTakeFirst();
    return row ? toRecord(row as Selectable<ImagesTable>) : null;
  }

  async update(
    id: string,
    ownerId: string,
    when: readonly ImageStatus[],
    patch: ImagePatch,
  ): Promise<ImageRecord | null> {
    const row = await this.db
      .updateTable("images")
      .set({ ...toColumns(patch), updated_at: new Date() })
      .where("id", "=", id)
      .where("owner_id", "=", ownerId)
      .where("status", "in", [...when])
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async ping(): Promise<void> {
    await this.db.selectFrom("images").select("id").limit(1).execute();
  }
}

function keyTakenOr(err: unknown, image: NewImage): unknown {
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e.code === "23505" && `${e.constraint ?? ""} ${e.message ?? ""}`.includes("idempotency_key")) {
    return new IdempotencyKeyTaken(`idempotency key already used by owner ${image.ownerId}`);
  }
  return err;
}

async function insertRow(db: Db, image: NewImage): Promise<ImageRecord> {
  return toRecord(
    await db.insertInto("images").values(toInsert(image)).returningAll().executeTakeFirstOrThrow(),
  );
}

function toInsert(image: NewImage) {
  return {
    id: image.id,
    owner_id: image.ownerId,
    status: "pending",
    visibility: image.visibility,
    filename: image.filename,
    object_key: image.objectKey,
    upload_method: image.uploadMethod,
    declared_content_type: image.declaredContentType,
    declared_size: image.declaredSize,
    declared_sha256: image.declaredSha256,
    idempotency_key: image.idempotencyKey,
    multipart_upload_id: image.multipartUploadId,
    multipart_part_size: image.multipartPartSize,
    upload_expires_at: image.uploadExpiresAt,
    claim_required: image.claimRequired ?? false,
    claim_expires_at: image.claimExpiresAt ?? null,
    profile: image.profile ?? null,
    profile_limits: image.profileLimits ? JSON.stringify(image.profileLimits) : null,
    reserved_bytes: image.reservedBytes ?? image.declaredSize,
  };
}

function toColumns(p: ImagePatch) {
  const c: Record<string, unknown> = {};
  if (p.contentType !== undefined) c.content_type = p.contentType;
  if (p.size !== undefined) c.size = p.size;
  if (p.width !== undefined) c.width = p.width;
  if (p.height !== undefined) c.height = p.height;
  if (p.format !== undefined) c.format = p.format;
  if (p.sha256 !== undefined) c.sha256 = p.sha256;
  if (p.placeholder !== undefined) c.placeholder = p.placeholder;
  if (p.rejectReason !== undefined) c.reject_reason = p.rejectReason;
  if (p.rejectDetail !== undefined) c.reject_detail = p.rejectDetail;
  if (p.readyAt !== undefined) c.ready_at = p.readyAt;
  if (p.deletedAt !== undefined) c.deleted_at = p.deletedAt;
  if (p.visibility !== undefined) c.visibility = p.visibility;
  if (p.uploadExpiresAt !== undefined) c.upload_expires_at = p.uploadExpiresAt;
  if (p.publicBytes !== undefined) c.public_bytes = p.publicBytes;
  return c;
}

const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

/** An images row (as selected, or as an outbox snapshot's JSON) as the domain record. */
export function toRecord(r: Selectable<ImagesTable>): ImageRecord {
  return {
    id: r.id,
    ownerId: r.owner_id,
    status: r.status as ImageStatus,
    visibility: r.visibility as Visibility,
    filename: r.filename,
    objectKey: r.object_key,
    uploadMethod: r.upload_method as UploadMethod,
    declaredContentType: r.declared_content_type,
    declaredSize: Number(r.declared_size),
    declaredSha256: r.declared_sha256,
    contentType: r.content_type,
    size: num(r.size),
    width: r.width,
    height: r.height,
    format: r.format,
    sha256: r.sha256,
    placeholder: r.placeholder,
    rejectReason: r.reject_reason as RejectReason | null,
    rejectDetail: r.reject_detail,
    multipartUploadId: r.multipart_upload_id,
    multipartPartSize: r.multipart_part_size,
    idempotencyKey: r.idempotency_key,
    uploadExpiresAt: new Date(r.upload_expires_at),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    readyAt: r.ready_at ? new Date(r.ready_at) : null,
    deletedAt: r.deleted_at ? new Date(r.deleted_at) : null,
    claimRequired: r.claim_required,
    claimExpiresAt: r.claim_expires_at ? new Date(r.claim_expires_at) : null,
    claimedAt: r.claimed_at ? new Date(r.claimed_at) : null,
    ref: r.ref,
    profile: r.profile,
    profileLimits: parseLimits(r.profile_limits),
  };
}
