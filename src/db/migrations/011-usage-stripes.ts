import { type Kysely, sql } from "kysely";

/**
 * One owner's usage counters split over 16 rows ("stripes"), each written by the database
 * backends whose pid falls on it. With one row, every intent of an owner upserted that row in its
 * transaction, so the owner's intents queued on its lock through each commit's WAL flush
 * (pg_stat_activity at saturation: most inserts in Lock:transactionid); with stripes, concurrent
 * connections write different rows and commit together. Readers sum the stripes; a quota-limited
 * insert or a recount locks all of them (src/db/owner-usage-stripes.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table owner_usage add column stripe int2 not null default 0`.execute(db);
  await sql`alter table owner_usage drop constraint owner_usage_pkey`.execute(db);
  await sql`alter table owner_usage add primary key (owner_id, stripe)`.execute(db);
  await sql`
    create function imgup_usage_stripe() returns int2 language sql stable as
    $$ select (pg_backend_pid() % 16)::int2 $$`.execute(db);
  await sql`
    create or replace function imgup_usage_add(o text, st text, sz int8, pub int8, res int8, decl int8, sign int)
    returns void language plpgsql as $$
    declare
      in_flight boolean := st in ('pending', 'processing');
      stored boolean := st not in ('pending', 'processing', 'rejected', 'expired', 'deleted');
    begin
      if not in_flight and not stored then return; end if;
      insert into owner_usage as u (owner_id, stripe, original_bytes, reserved_bytes, images, pending_images)
      values (
        o,
        imgup_usage_stripe(),
        case when stored then sign * (coalesce(sz, 0) + pub) else 0 end,
        case when in_flight then sign * greatest(res, decl) else 0 end,
        case when stored then sign else 0 end,
        case when in_flight then sign else 0 end
      )
      on conflict (owner_id, stripe) do update set
        original_bytes = u.original_bytes + excluded.original_bytes,
        reserved_bytes = u.reserved_bytes + excluded.reserved_bytes,
        images = u.images + excluded.images,
        pending_images = u.pending_images + excluded.pending_images;
    end $$`.execute(db);
  await sql`
    create or replace function imgup_variants_usage() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and old.bytes = new.bytes then return null; end if;
      if tg_op in ('UPDATE', 'DELETE') then
        insert into owner_usage as u (owner_id, stripe, variant_bytes)
        values (old.owner_id, imgup_usage_stripe(), -old.bytes)
        on conflict (owner_id, stripe) do update set variant_bytes = u.variant_bytes + excluded.variant_bytes;
      end if;
      if tg_op in ('UPDATE', 'INSERT') then
        insert into owner_usage as u (owner_id, stripe, variant_bytes)
        values (new.owner_id, imgup_usage_stripe(), new.bytes)
        on conflict (owner_id, stripe) do update set variant_bytes = u.variant_bytes + excluded.variant_bytes;
      end if;
      return null;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function imgup_variants_usage() returns trigger language plpgsql as $$
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
    create or replace function imgup_usage_add(o text, st text, sz int8, pub int8, res int8, decl int8, sign int)
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
  // Stripes fold into stripe 0 before the one-row key comes back.
  await sql`
    update owner_usage u set
      original_bytes = s.original_bytes, variant_bytes = s.variant_bytes,
      reserved_bytes = s.reserved_bytes, images = s.images, pending_images = s.pending_images
    from (select owner_id, sum(original_bytes) original_bytes, sum(variant_bytes) variant_bytes,
            sum(reserved_bytes) reserved_bytes, sum(images) images, sum(pending_images) pending_images
          from owner_usage group by owner_id) s
    where u.owner_id = s.owner_id and u.stripe = 0`.execute(db);
  await sql`
    insert into owner_usage (owner_id, stripe, original_bytes, variant_bytes, reserved_bytes, images, pending_images)
    select owner_id, 0, sum(original_bytes), sum(variant_bytes), sum(reserved_bytes), sum(images), sum(pending_images)
    from owner_usage group by owner_id having bool_and(stripe <> 0)`.execute(db);
  await sql`delete from owner_usage where stripe <> 0`.execute(db);
  await sql`alter table owner_usage drop constraint owner_usage_pkey`.execute(db);
  await sql`alter table owner_usage drop column stripe`.execute(db);
  await sql`alter table owner_usage add primary key (owner_id)`.execute(db);
  await sql`drop function imgup_usage_stripe()`.execute(db);
}
