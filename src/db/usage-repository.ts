import { sql } from "kysely";
import { type QuotaLimits, type StoredVariant, type Usage, variantsToEvict } from "../domain/quota.ts";
import { sumUsage } from "./owner-usage-stripes.ts";
import type { Db } from "./schema.ts";

export interface VariantWrite {
  imageId: string;
  ownerId: string;
  key: string;
  bytes: number;
  /** The image's variant cap in bytes; null: no cap. */
  cap: number | null;
}

export type VariantWriteResult =
  /** Recorded: store the object; delete the evicted keys' objects (their rows are gone already). */
  | { outcome: "recorded"; evicted: string[] }
  /** Over the cap on its own: serve it, do not store it. */
  | { outcome: "too_large" }
  /** The image is no longer live: store nothing. */
  | { outcome: "gone" };

/** Usage counters, quota overrides and the variant rows (migration 008). */
export interface UsageRepository {
  usage(ownerId: string): Promise<Usage>;
  /** The owner's override, or null when the defaults apply. */
  quotaOverride(ownerId: string): Promise<QuotaLimits | null>;
  setQuotaOverride(ownerId: string, limits: QuotaLimits): Promise<void>;
  /** false when there was none. */
  deleteQuotaOverride(ownerId: string): Promise<boolean>;
  /**
   * Records a variant before its object is written, evicting the image's least recently accessed
   * variants to stay under the cap; serialized per image by a lock on the image's row.
   */
  recordVariant(write: VariantWrite): Promise<VariantWriteResult>;
  /** The object could not be written after all: its row goes (and its bytes from the usage). */
  forgetVariant(imageId: string, key: string): Promise<void>;
  /** Moves the variant's last access to now, unless it was moved within `minIntervalMs`. */
  touchVariant(imageId: string, key: string, minIntervalMs: number): Promise<void>;
  variants(imageId: string): Promise<StoredVariant[]>;
}

const LIVE_FOR_VARIANTS = ["pending", "processing", "ready", "held"];

export class KyselyUsageRepository implements UsageRepository {
  constructor(private readonly db: Db) {}

  async usage(ownerId: string): Promise<Usage> {
    return sumUsage(this.db, ownerId);
  }

  async quotaOverride(ownerId: string): Promise<QuotaLimits | null> {
    const row = await this.db
      .selectFrom("owner_quotas")
      .select(["max_bytes", "max_images"])
      .where("owner_id", "=", ownerId)
      .executeTakeFirst();
    if (!row) return null;
    return { maxBytes: nullableNumber(row.max_bytes), maxImages: nullableNumber(row.max_images) };
  }

  async setQuotaOverride(ownerId: string, limits: QuotaLimits): Promise<void> {
    const values = { max_bytes: limits.maxBytes, max_images: limits.maxImages, updated_at: new Date() };
    await this.db
      .insertInto("owner_quotas")
      .values({ owner_id: ownerId, ...values })
      .onConflict((oc) => oc.column("owner_id").doUpdateSet(values))
      .execute();
  }

  async deleteQuotaOverride(ownerId: string): Promise<boolean> {
    const r = await this.db.deleteFrom("owner_quotas").where("owner_id", "=", ownerId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async recordVariant(w: VariantWrite): Promise<VariantWriteResult> {
    return this.db.transaction().execute(async (trx) => {
      // The image's row lock orders variant writes of one image across instances, and a delete
      // (whose trigger drops the variant rows) either waits for this or is seen by it.
      const image = await trx
        .selectFrom("images")
        .select("id")
        .where("id", "=", w.imageId)
        .where("status", "in", LIVE_FOR_VARIANTS)
        .forUpdate()
        .executeTakeFirst();
      if (!image) return { outcome: "gone" } as const;
      const rows = await trx
        .selectFrom("image_variants")
        .select(["key", "bytes", "last_accessed_at"])
        .where("image_id", "=", w.imageId)
        .execute();
      // The same key written again (its object was lost) replaces its row.
      const stored = rows
        .filter((r) => r.key !== w.key)
        .map((r) => ({ key: r.key, bytes: Number(r.bytes), lastAccessedAt: new Date(r.last_accessed_at) }));
      const evicted = variantsToEvict(stored, w.bytes, w.cap);
      if (evicted === null) return { outcome: "too_large" } as const;
      if (evicted.length > 0) {
        await trx
          .deleteFrom("image_variants")
          .where("image_id", "=", w.imageId)
          .where("key", "in", evicted)
          .execute();
      }
      // The database's clock, like touchVariant's: instances' clocks may disagree.
      await trx
        .insertInto("image_variants")
        .values({ image_id: w.imageId, key: w.key, owner_id: w.ownerId, bytes: w.bytes })
        .onConflict((oc) =>
          oc
            .columns(["image_id", "key"])
            .doUpdateSet({ bytes: w.bytes, created_at: sql`now()`, last_accessed_at: sql`now()` }),
        )
        .execute();
      return { outcome: "recorded", evicted } as const;
    });
  }

  async forgetVariant(imageId: string, key: string): Promise<void> {
    await this.db
      .deleteFrom("image_variants")
      .where("image_id", "=", imageId)
      .where("key", "=", key)
      .execute();
  }

  async touchVariant(imageId: string, key: string, minIntervalMs: number): Promise<void> {
    await sql`
      update image_variants set last_accessed_at = now()
      where image_id = ${imageId} and key = ${key}
        and last_accessed_at <= now() - ${Math.max(0, Math.round(minIntervalMs))}::int * interval '1 millisecond'
    `.execute(this.db);
  }

  async variants(imageId: string): Promise<StoredVariant[]> {
    const rows = await this.db
      .selectFrom("image_variants")
      .select(["key", "bytes", "last_accessed_at"])
      .where("image_id", "=", imageId)
      .orderBy("key")
      .execute();
    return rows.map((r) => ({
      key: r.key,
      bytes: Number(r.bytes),
      lastAccessedAt: new Date(r.last_accessed_at),
    }));
  }
}

const nullableNumber = (v: string | number | null): number | null => (v === null ? null : Number(v));
