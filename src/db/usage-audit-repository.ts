import { sql } from "kysely";
import type { ImageStatus } from "../domain/image.ts";
import { lockUsage, sumUsage } from "./owner-usage-stripes.ts";
import type { Db } from "./schema.ts";

export interface ImageFacts {
  id: string;
  ownerId: string;
  status: ImageStatus;
  size: number;
  publicBytes: number;
}

export interface RecordedBytes {
  ownerId: string;
  originalBytes: number;
  variantBytes: number;
}

/** Statuses whose original counts (as migration 008's trigger decides). */
export const NOT_STORED = ["pending", "processing", "rejected", "expired", "deleted"] as const;
/** Statuses whose variants count. */
export const LIVE = ["pending", "processing", "ready", "held"] as const;

/** What `imgup doctor` reads and repairs of the usage record (migration 008). Not on a request path. */
export class UsageAuditRepository {
  constructor(private readonly db: Db) {}

  async facts(ids: readonly string[]): Promise<Map<string, ImageFacts>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("images")
      .select(["id", "owner_id", "status", "size", "public_bytes"])
      .where("id", "in", [...new Set(ids)])
      .execute();
    return new Map(rows.map((r) => [r.id, toFacts(r)]));
  }

  /** Owners whose record holds stored bytes, in owner order after `after`. */
  async recordedPage(after: string | null, limit: number): Promise<RecordedBytes[]> {
    let q = this.db
      .selectFrom("owner_usage")
      .select((eb) => [
        "owner_id",
        eb.fn.sum<string>("original_bytes").as("original_bytes"),
        eb.fn.sum<string>("variant_bytes").as("variant_bytes"),
      ])
      .groupBy("owner_id")
      .having((eb) =>
        eb.or([eb(eb.fn.sum("original_bytes"), "!=", 0), eb(eb.fn.sum("variant_bytes"), "!=", 0)]),
      )
      .orderBy("owner_id")
      .limit(limit);
    if (after !== null) q = q.where("owner_id", ">", after);
    return (await q.execute()).map((r) => ({
      ownerId: r.owner_id,
      originalBytes: Number(r.original_bytes),
      variantBytes: Number(r.variant_bytes),
    }));
  }

  async recorded(ownerId: string): Promise<RecordedBytes> {
    const u = await sumUsage(this.db, ownerId);
    return { ownerId, originalBytes: u.originalBytes, variantBytes: u.variantBytes };
  }

  /** The owner's images whose objects count (live), in id order after `afterId`. */
  async liveImages(ownerId: string, afterId: string | null, limit: number): Promise<ImageFacts[]> {
    let q = this.db
      .selectFrom("images")
      .select(["id", "owner_id", "status", "size", "public_bytes"])
      .where("owner_id", "=", ownerId)
      .where("status", "not in", ["rejected", "expired", "deleted"])
      .orderBy("id")
      .limit(limit);
    if (afterId !== null) q = q.where("id", ">", afterId);
    return (await q.execute()).map(toFacts);
  }

  async variantRows(imageId: string): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom("image_variants")
      .select(["key", "bytes"])
      .where("image_id", "=", imageId)
      .execute();
    return new Map(rows.map((r) => [r.key, Number(r.bytes)]));
  }

  async upsertVariant(imageId: string, ownerId: string, key: string, bytes: number): Promise<void> {
    await this.db
      .insertInto("image_variants")
      .values({ image_id: imageId, owner_id: ownerId, key, bytes })
      .onConflict((oc) => oc.columns(["image_id", "key"]).doUpdateSet({ bytes }))
      .execute();
  }

  async deleteVariants(imageId: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.db
      .deleteFrom("image_variants")
      .where("image_id", "=", imageId)
      .where("key", "in", [...keys])
      .execute();
  }

  async setPublicBytes(imageId: string, bytes: number): Promise<void> {
    await this.db.updateTable("images").set({ public_bytes: bytes }).where("id", "=", imageId).execute();
  }

  /** Sets the owner's counters to what the rows add up to, under the lock of all their stripes. */
  async recompute(ownerId: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await lockUsage(trx, ownerId);
      // The totals go to stripe 0; the others restart from zero.
      await trx
        .updateTable("owner_usage")
        .set({ original_bytes: 0, variant_bytes: 0, reserved_bytes: 0, images: 0, pending_images: 0 })
        .where("owner_id", "=", ownerId)
        .where("stripe", "!=", 0)
        .execute();
      await sql`
        update owner_usage set
          original_bytes = coalesce((select sum(coalesce(size, 0) + public_bytes) from images
            where owner_id = ${ownerId} and status not in ('pending','processing','rejected','expired','deleted')), 0),
          variant_bytes = coalesce((select sum(bytes) from image_variants where owner_id = ${ownerId}), 0),
          reserved_bytes = coalesce((select sum(greatest(reserved_bytes, declared_size)) from images
            where owner_id = ${ownerId} and status in ('pending','processing')), 0),
          images = (select count(*) from images
            where owner_id = ${ownerId} and status not in ('pending','processing','rejected','expired','deleted')),
          pending_images = (select count(*) from images
            where owner_id = ${ownerId} and status in ('pending','processing'))
        where owner_id = ${ownerId} and stripe = 0`.execute(trx);
    });
  }
}

function toFacts(r: {
  id: string;
  owner_id: string;
  status: string;
  size: string | number | null;
  public_bytes: string | number;
}): ImageFacts {
  return {
    id: r.id,
    ownerId: r.owner_id,
    status: r.status as ImageStatus,
    size: Number(r.size ?? 0),
    publicBytes: Number(r.public_bytes),
  };
}
