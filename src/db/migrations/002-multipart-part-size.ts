import type { Kysely } from "kysely";

/** The part size is fixed when the upload starts; a config change must not move part boundaries. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").addColumn("multipart_part_size", "integer").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").dropColumn("multipart_part_size").execute();
}
