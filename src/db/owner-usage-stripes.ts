import { type Kysely, sql } from "kysely";
import type { Usage } from "../domain/quota.ts";
import type { Database } from "./schema.ts";

/** As many as imgup_usage_stripe() (migration 011) spreads writers over. */
export const USAGE_STRIPES = 16;

/** The owner's counters: the sum of their stripes (zeros without any). */
export async function sumUsage(db: Kysely<Database>, ownerId: string): Promise<Usage> {
  const row = await db
    .selectFrom("owner_usage")
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<string>("original_bytes"), sql<string>`0`).as("original_bytes"),
      eb.fn.coalesce(eb.fn.sum<string>("variant_bytes"), sql<string>`0`).as("variant_bytes"),
      eb.fn.coalesce(eb.fn.sum<string>("reserved_bytes"), sql<string>`0`).as("reserved_bytes"),
      eb.fn.coalesce(eb.fn.sum<string>("images"), sql<string>`0`).as("images"),
      eb.fn.coalesce(eb.fn.sum<string>("pending_images"), sql<string>`0`).as("pending_images"),
    ])
    .where("owner_id", "=", ownerId)
    .executeTakeFirstOrThrow();
  return toUsage(row);
}

/**
 * Locks every stripe of the owner (created first, so none can appear behind the lock) and returns
 * their sum. Inside a transaction: until it ends, every trigger that adds to this owner's usage
 * waits, and so does any other caller of this, so a quota check and its insert are one step.
 * Stripes are locked in order, so two callers cannot deadlock.
 */
export async function lockUsage(trx: Kysely<Database>, ownerId: string): Promise<Usage> {
  await sql`
    insert into owner_usage (owner_id, stripe)
    select ${ownerId}, s from generate_series(0, ${USAGE_STRIPES - 1}) s
    on conflict do nothing`.execute(trx);
  const rows = await trx
    .selectFrom("owner_usage")
    .selectAll()
    .where("owner_id", "=", ownerId)
    .orderBy("stripe")
    .forUpdate()
    .execute();
  const total = { originalBytes: 0, variantBytes: 0, reservedBytes: 0, images: 0, pendingImages: 0 };
  for (const r of rows) {
    const u = toUsage(r);
    total.originalBytes += u.originalBytes;
    total.variantBytes += u.variantBytes;
    total.reservedBytes += u.reservedBytes;
    total.images += u.images;
    total.pendingImages += u.pendingImages;
  }
  return total;
}

export function toUsage(r: {
  original_bytes: string | number;
  variant_bytes: string | number;
  reserved_bytes: string | number;
  images: string | number;
  pending_images: string | number;
}): Usage {
  return {
    originalBytes: Number(r.original_bytes),
    variantBytes: Number(r.variant_bytes),
    reservedBytes: Number(r.reserved_bytes),
    images: Number(r.images),
    pendingImages: Number(r.pending_images),
  };
}
