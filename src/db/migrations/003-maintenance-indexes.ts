import { type Kysely, sql } from "kysely";

/**
 * The doctor walks ready rows in the storage's key order (bytewise, i.e. collation "C") to match
 * them against the listing page by page; the stuck-processing check looks rows up by age.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index images_ready_object_key_c_idx on images (object_key collate "C") where status = 'ready'`.execute(
    db,
  );
  await db.schema
    .createIndex("images_processing_updated_idx")
    .on("images")
    .column("updated_at")
    .where(sql.ref("status"), "=", "processing")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("images_processing_updated_idx").execute();
  await db.schema.dropIndex("images_ready_object_key_c_idx").execute();
}
