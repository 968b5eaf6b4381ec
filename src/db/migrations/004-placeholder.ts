import type { Kysely } from "kysely";

/** A ThumbHash of the image, shown while the real thumbnail loads. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").addColumn("placeholder", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").dropColumn("placeholder").execute();
}
