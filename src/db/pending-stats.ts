import type { PendingStats } from "../metrics.ts";
import type { Db } from "./schema.ts";

/**
 * The earliest upload-URL expiry among pending images, for the stuck-pending gauge. One seek on
 * images_status_expires_idx (status, upload_expires_at), cheap enough for every scrape.
 */
export async function readPendingStats(db: Db): Promise<PendingStats> {
  const row = await db
    .selectFrom("images")
    .select((eb) => eb.fn.min("upload_expires_at").as("oldest"))
    .where("status", "=", "pending")
    .executeTakeFirst();
  const oldest = row?.oldest;
  return { oldestUploadExpiry: oldest ? new Date(oldest as string | Date) : null };
}
