import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("images")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("owner_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("visibility", "text", (c) => c.notNull())
    .addColumn("filename", "text", (c) => c.notNull())
    .addColumn("object_key", "text", (c) => c.notNull())
    .addColumn("upload_method", "text", (c) => c.notNull())
    .addColumn("declared_content_type", "text", (c) => c.notNull())
    .addColumn("declared_size", "int8", (c) => c.notNull())
    .addColumn("declared_sha256", "text")
    .addColumn("content_type", "text")
    .addColumn("size", "int8")
    .addColumn("width", "integer")
    .addColumn("height", "integer")
    .addColumn("format", "text")
    .addColumn("sha256", "text")
    .addColumn("reject_reason", "text")
    .addColumn("reject_detail", "text")
    .addColumn("multipart_upload_id", "text")
    .addColumn("idempotency_key", "text")
    .addColumn("upload_expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("ready_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .addCheckConstraint(
      "images_status_check",
      sql`status in ('pending','processing','ready','rejected','expired','deleted')`,
    )
    .execute();
  // Listing is per owner, newest first; ids are UUIDv7 so id order is creation order.
  await db.schema.createIndex("images_owner_id_idx").on("images").columns(["owner_id", "id"]).execute();
  await db.schema
    .createIndex("images_owner_sha256_ready_idx")
    .on("images")
    .columns(["owner_id", "sha256"])
    .where(sql.ref("status"), "=", "ready")
    .execute();
  // Backstop for Idempotency-Key when the KV forgot it.
  await db.schema
    .createIndex("images_owner_idempotency_key_uq")
    .on("images")
    .columns(["owner_id", "idempotency_key"])
    .unique()
    .where(sql.ref("idempotency_key"), "is not", null)
    .execute();
  await db.schema
    .createIndex("images_status_expires_idx")
    .on("images")
    .columns(["status", "upload_expires_at"])
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("owner_id", "text", (c) => c.notNull())
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("scopes", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("revoked_at", "timestamptz")
    .execute();

  await db.schema
    .createTable("jobs")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull().unique())
    .addColumn("payload", "jsonb", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("max_attempts", "integer", (c) => c.notNull())
    .addColumn("run_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("locked_until", "timestamptz")
    .addColumn("lease_token", "text")
    .addColumn("last_error", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint("jobs_status_check", sql`status in ('queued','running','done','dead')`)
    .execute();
  await db.schema.createIndex("jobs_claim_idx").on("jobs").columns(["status", "run_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("jobs").execute();
  await db.schema.dropTable("api_keys").execute();
  await db.schema.dropTable("images").execute();
}
