import { type Kysely, sql } from "kysely";

/**
 * A job's group (the image owner for processing jobs): the claim caps how many jobs of one group run
 * at once, so one owner's backlog cannot take every worker slot. The index serves the claim's count
 * of running jobs per group.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("jobs").addColumn("group_key", "text").execute();
  await db.schema
    .createIndex("jobs_running_group_idx")
    .on("jobs")
    .column("group_key")
    .where(sql.ref("status"), "=", "running")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("jobs_running_group_idx").execute();
  await db.schema.alterTable("jobs").dropColumn("group_key").execute();
}
