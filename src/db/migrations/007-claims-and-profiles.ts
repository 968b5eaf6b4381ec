import { type Kysely, sql } from "kysely";

/**
 * Claim or expire (an image the app must claim for one of its records, or it is deleted) and upload
 * profiles (named policies; those of the admin API live in upload_profiles, so every instance sees
 * them). profile_limits is the profile's effective limits at intent time, as JSON text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("images")
    .addColumn("claim_required", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("claim_expires_at", "timestamptz")
    .addColumn("claimed_at", "timestamptz")
    .addColumn("ref", "text")
    .addColumn("profile", "text")
    .addColumn("profile_limits", "text")
    .execute();
  // GET /v1/images?ref=: one owner's images of one app record.
  await db.schema
    .createIndex("images_owner_ref_idx")
    .on("images")
    .columns(["owner_id", "ref"])
    .where(sql.ref("ref"), "is not", null)
    .execute();
  // The expiry pass: only unclaimed finished images are in it, oldest deadline first.
  await sql`create index images_unclaimed_expiry_idx on images (claim_expires_at)
    where claim_required and claimed_at is null and status in ('ready', 'rejected')`.execute(db);
  await db.schema
    .createTable("upload_profiles")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("settings", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("upload_profiles").execute();
  await db.schema.dropIndex("images_unclaimed_expiry_idx").execute();
  await db.schema.dropIndex("images_owner_ref_idx").execute();
  await db.schema
    .alterTable("images")
    .dropColumn("claim_required")
    .dropColumn("claim_expires_at")
    .dropColumn("claimed_at")
    .dropColumn("ref")
    .dropColumn("profile")
    .dropColumn("profile_limits")
    .execute();
}
