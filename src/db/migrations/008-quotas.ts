import { type Kysely, sql } from "kysely";

/**
 * Per-owner usage, kept by triggers in the same transaction as every change that adds or removes
 * bytes, so it is exact whichever code path (or instance) changes an image's status, and parallel
 * writers serialize on the owner's usage row instead of overshooting.
 *
 * - images.reserved_bytes: what an upload in flight may add (the declared size; a proxy upload of
 *   unknown length reserves the upload limit). Counted while pending or processing.
 * - images.public_bytes: the metadata-stripped public copy, stored beside the original.
 * - image_variants: one row per stored variant object (its size and last access), the unit the
 *   per-image variant cap evicts.
 * - owner_usage: the counters; owner_quotas: per-owner limit overrides (null: unlimited).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("images")
    .addColumn("reserved_bytes", "int8", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable("images")
    .addColumn("public_bytes", "int8", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable("owner_usage")
    .addColumn("owner_id", "text", (c) => c.primaryKey())
    .addColumn("original_bytes", "int8", (c) => c.notNull().defaultTo(0))
    .addColumn("variant_bytes", "int8", (c) => c.notNull().defaultTo(0))
    .addColumn("reserved_bytes", "int8", (c) => c.notNull().defaultTo(0))
    .addColumn("images", "int8", (c) => c.notNull().defaultTo(0))
    .addColumn("pending_images", "int8", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable("owner_quotas")
    .addColumn("owner_id", "text", (c) => c.primaryKey())
    .addColumn("max_bytes", "int8")
    .addColumn("max_images", "int8")
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable("image_variants")
    .addColumn("image_id", "uuid", (c) => c.notNull().references("images.id").onDelete("cascade"))
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("owner_id", "text", (c) => c.notNull())
    .addColumn("bytes", "int8", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("last_accessed_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("image_variants_pk", ["image_id", "key"])
    .execute();

  // What one image row contributes to its owner's usage; any status that is not in flight or dead
  // (ready, or one added later) holds its original.
  await sql`
    create function imgup_usage_add(o text, st text, sz int8, pub int8, res int8, decl int8, sign int)
    returns void language plpgsql as $$
    declare
      in_flight boolean := st in ('pending', 'processing');
      stored boolean := st not in ('pending', 'processing', 'rejected', 'expired', 'deleted');
    begin
      if not in_flight and not stored then return; end if;
      insert into owner_usage as u (owner_id, original_bytes, reserved_bytes, images, pending_images)
      values (
        o,
        case when stored then sign * (coalesce(sz, 0) + pub) else 0 end,
        case when in_flight then sign * greatest(res, decl) else 0 end,
        case when stored then sign else 0 end,
        case when in_flight then sign else 0 end
      )
      on conflict (owner_id) do update set
        original_bytes = u.original_bytes + excluded.original_bytes,
        reserved_bytes = u.reserved_bytes + excluded.reserved_bytes,
        images = u.images + excluded.images,
        pending_images = u.pending_images + excluded.pending_images;
    end $$`.execute(db);
  await sql`
    create function imgup_images_usage() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE'
         and old.status = new.status and old.owner_id = new.owner_id
         and old.size is not distinct from new.size and old.public_bytes = new.public_bytes
         and old.reserved_bytes = new.reserved_bytes and old.declared_size = new.declared_size then
        return null;
      end if;
      if tg_op in ('UPDATE', 'DELETE') then
        perform imgup_usage_add(old.owner_id, old.status, old.size, old.public_bytes,
                                old.reserved_bytes, old.declared_size, -1);
      end if;
      if tg_op in ('UPDATE', 'INSERT') then
        perform imgup_usage_add(new.owner_id, new.status, new.size, new.public_bytes,
                                new.reserved_bytes, new.declared_size, 1);
        -- A dead image's variants stop counting with it (their objects go with its prefix).
        if new.status in ('rejected', 'expired', 'deleted') then
          delete from image_variants where image_id = new.id;
        end if;
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger images_usage after insert or update or delete on images
    for each row execute function imgup_images_usage()`.execute(db);
  await sql`
    create function imgup_variants_usage() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and old.bytes = new.bytes then return null; end if;
      if tg_op in ('UPDATE', 'DELETE') then
        insert into owner_usage as u (owner_id, variant_bytes) values (old.owner_id, -old.bytes)
        on conflict (owner_id) do update set variant_bytes = u.variant_bytes + excluded.variant_bytes;
      end if;
      if tg_op in ('UPDATE', 'INSERT') then
        insert into owner_usage as u (owner_id, variant_bytes) values (new.owner_id, new.bytes)
        on conflict (owner_id) do update set variant_bytes = u.variant_bytes + excluded.variant_bytes;
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger image_variants_usage after insert or update or delete on image_variants
    for each row execute function imgup_variants_usage()`.execute(db);

  // Images that existed before: their originals and reservations (variants and public copies are
  // not known to the database; `imgup doctor --fix-usage` counts them from the storage).
  await sql`
    insert into owner_usage (owner_id, original_bytes, reserved_bytes, images, pending_images)
    select owner_id,
      coalesce(sum(coalesce(size, 0)) filter (where status not in ('pending','processing','rejected','expired','deleted')), 0),
      coalesce(sum(declared_size) filter (where status in ('pending','processing')), 0),
      count(*) filter (where status not in ('pending','processing','rejected','expired','deleted')),
      count(*) filter (where status in ('pending','processing'))
    from images group by owner_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists image_variants_usage on image_variants`.execute(db);
  await sql`drop trigger if exists images_usage on images`.execute(db);
  await sql`drop function if exists imgup_variants_usage()`.execute(db);
  await sql`drop function if exists imgup_images_usage()`.execute(db);
  await sql`drop function if exists imgup_usage_add(text, text, int8, int8, int8, int8, int)`.execute(db);
  await db.schema.dropTable("image_variants").execute();
  await db.schema.dropTable("owner_quotas").execute();
  await db.schema.dropTable("owner_usage").execute();
  await db.schema.alterTable("images").dropColumn("public_bytes").execute();
  await db.schema.alterTable("images").dropColumn("reserved_bytes").execute();
}
