import { type Kysely, sql } from "kysely";

/**
 * The app-facing event log (outbox) and outbound webhooks. An event row is written in the same
 * statement or transaction as the image's state change. `txid` is the writing transaction's id:
 * readers order by (txid, seq) and read only below the oldest running transaction, so the log has no
 * gaps behind a cursor (db/outbox.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("outbox_events")
    .addColumn("seq", "bigserial", (c) => c.primaryKey())
    .addColumn("txid", "int8", (c) => c.notNull().defaultTo(sql`(pg_current_xact_id()::text::int8)`))
    .addColumn("id", "text", (c) =>
      c.notNull().unique().defaultTo(sql`('evt_' || replace(gen_random_uuid()::text, '-', ''))`),
    )
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("owner_id", "text", (c) => c.notNull())
    .addColumn("image_id", "uuid", (c) => c.notNull())
    // The image row as it was written by the transition (to_jsonb of the images row).
    .addColumn("snapshot", "jsonb", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex("outbox_events_position_idx")
    .on("outbox_events")
    .columns(["txid", "seq"])
    .execute();
  await db.schema
    .createIndex("outbox_events_owner_position_idx")
    .on("outbox_events")
    .columns(["owner_id", "txid", "seq"])
    .execute();
  await db.schema.createIndex("outbox_events_created_idx").on("outbox_events").column("created_at").execute();

  await db.schema
    .createTable("webhook_endpoints")
    .addColumn("id", "text", (c) => c.primaryKey())
    // null: deployment-wide (every owner's events), registered by an admin or from the configuration.
    .addColumn("owner_id", "text")
    .addColumn("url", "text", (c) => c.notNull())
    // Space-separated event types; empty: every type.
    .addColumn("events", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("source", "text", (c) => c.notNull().defaultTo("api"))
    .addColumn("secret", "text", (c) => c.notNull())
    .addColumn("previous_secret", "text")
    .addColumn("previous_secret_expires_at", "timestamptz")
    .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("failing_since", "timestamptz")
    .addColumn("disabled_at", "timestamptz")
    .addColumn("disabled_reason", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex("webhook_endpoints_owner_idx")
    .on("webhook_endpoints")
    .column("owner_id")
    .execute();

  await db.schema
    .createTable("webhook_deliveries")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("endpoint_id", "text", (c) =>
      c.notNull().references("webhook_endpoints.id").onDelete("cascade"),
    )
    .addColumn("event_seq", "int8", (c) => c.notNull().references("outbox_events.seq").onDelete("cascade"))
    .addColumn("image_id", "uuid", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("pending"))
    .addColumn("replay", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "timestamptz", (c) => c.notNull())
    .addColumn("locked_until", "timestamptz")
    .addColumn("lease_token", "text")
    .addColumn("last_attempt_at", "timestamptz")
    .addColumn("last_status_code", "integer")
    .addColumn("last_error", "text")
    .addColumn("delivered_at", "timestamptz")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint("webhook_deliveries_status_check", sql`status in ('pending','succeeded','failed')`)
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_due_idx")
    .on("webhook_deliveries")
    .columns(["next_attempt_at"])
    .where(sql.ref("status"), "=", "pending")
    .execute();
  // Per-image ordering: the claim looks for an earlier pending delivery of the same image and endpoint.
  await db.schema
    .createIndex("webhook_deliveries_order_idx")
    .on("webhook_deliveries")
    .columns(["endpoint_id", "image_id", "id"])
    .where(sql.ref("status"), "=", "pending")
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_log_idx")
    .on("webhook_deliveries")
    .columns(["endpoint_id", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_event_idx")
    .on("webhook_deliveries")
    .column("event_seq")
    .execute();

  // The fan-out's position in the event log: one row, locked by whichever worker dispatches.
  await db.schema
    .createTable("webhook_dispatch")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("txid", "int8", (c) => c.notNull())
    .addColumn("seq", "int8", (c) => c.notNull())
    .execute();
  await sql`insert into webhook_dispatch (id, txid, seq) values (1, 0, 0)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("webhook_dispatch").execute();
  await db.schema.dropTable("webhook_deliveries").execute();
  await db.schema.dropTable("webhook_endpoints").execute();
  await db.schema.dropTable("outbox_events").execute();
}
