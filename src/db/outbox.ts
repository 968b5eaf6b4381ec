import { type Kysely, type Selectable, sql } from "kysely";
import type { OutboxEventType } from "../domain/webhook-events.ts";
import type { Database, ImagesTable } from "./schema.ts";

/**
 * Writes an app-facing event about `row` (the images row after the change) inside the caller's
 * transaction, so the change and its event commit or roll back together. For repository methods
 * that change an image outside transition() (e.g. a claim emitting image.claimed).
 */
export async function writeOutboxEvent(
  trx: Kysely<Database>,
  type: OutboxEventType,
  row: Selectable<ImagesTable>,
): Promise<void> {
  await trx
    .insertInto("outbox_events")
    .values({ type, owner_id: row.owner_id, image_id: row.id, snapshot: JSON.stringify(row) })
    .execute();
}

/**
 * For raw-SQL updates of several images: `with moved as (update images ... returning *), ${outboxFrom("moved", type)} select ...`
 * writes one event per updated row in the same statement.
 */
export function outboxFrom(cte: string, type: OutboxEventType) {
  const t = sql.table(cte);
  return sql`outbox_written as (
    insert into outbox_events (type, owner_id, image_id, snapshot)
    select ${type}, ${t}.owner_id, ${t}.id, to_jsonb(${t}) from ${t}
  )`;
}
