import { type Kysely, sql } from "kysely";

/**
 * The `held` status (awaiting a moderation decision): the status check of migration 001 names every
 * status, so it is replaced. Usage needs nothing: migration 008 counts any status that is neither
 * in flight nor dead as stored, held included.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table images drop constraint images_status_check`.execute(db);
  await sql`alter table images add constraint images_status_check
    check (status in ('pending','processing','ready','rejected','expired','deleted','held'))`.execute(db);
}

/** Fails while any image is held: decide them first (approve or reject). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table images drop constraint images_status_check`.execute(db);
  await sql`alter table images add constraint images_status_check
    check (status in ('pending','processing','ready','rejected','expired','deleted'))`.execute(db);
}
