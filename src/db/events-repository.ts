import { type Selectable, sql } from "kysely";
import type { ImageRecord } from "../domain/image.ts";
import type { EventPosition, OutboxEventType } from "../domain/webhook-events.ts";
import { toRecord } from "./images-repository.ts";
import type { Db, ImagesTable, OutboxEventsTable } from "./schema.ts";

/** One event of the outbox as readers see it. */
export interface StoredEvent {
  seq: number;
  txid: number;
  id: string;
  type: OutboxEventType;
  ownerId: string;
  imageId: string;
  /** The image as the transition left it (its snapshot). */
  image: ImageRecord;
  createdAt: Date;
}

/**
 * Only events of transactions older than every running one: a transaction still running can only add
 * rows at positions after those, so a reader's cursor never skips a row that commits later.
 */
export const committedBelowXmin = sql<boolean>`txid < pg_snapshot_xmin(pg_current_snapshot())::text::int8`;

export class EventsRepository {
  constructor(private readonly db: Db) {}

  /** Events after `after` in log order; one owner's, or everyone's when ownerId is null. */
  async readAfter(after: EventPosition, limit: number, ownerId: string | null): Promise<StoredEvent[]> {
    let q = this.db
      .selectFrom("outbox_events")
      .selectAll()
      .where(sql<boolean>`(txid, seq) > (${after.txid}::int8, ${after.seq}::int8)`)
      .where(committedBelowXmin)
      .orderBy("txid")
      .orderBy("seq")
      .limit(limit);
    if (ownerId !== null) q = q.where("owner_id", "=", ownerId);
    return (await q.execute()).map(toStoredEvent);
  }

  async findById(id: string): Promise<StoredEvent | null> {
    const row = await this.db.selectFrom("outbox_events").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toStoredEvent(row) : null;
  }

  /** Seconds since the oldest event the webhook fan-out has not reached yet (0: none waiting). */
  async dispatchLagSeconds(): Promise<number> {
    const r = await sql<{ age: number | null }>`
      select extract(epoch from now() - min(e.created_at))::float8 as age
      from outbox_events e, webhook_dispatch d
      where d.id = 1 and (e.txid, e.seq) > (d.txid, d.seq)
    `.execute(this.db);
    return Math.max(0, Number(r.rows[0]?.age ?? 0));
  }

  /** Drops events older than `before` that no delivery still waits for. */
  async prune(before: Date, limit: number): Promise<number> {
    const r = await sql<{ seq: number }>`
      delete from outbox_events where seq in (
        select e.seq from outbox_events e
        where e.created_at < ${before}
          and not exists (select 1 from webhook_deliveries d where d.event_seq = e.seq and d.status = 'pending')
        order by e.seq limit ${limit}
      ) returning seq
    `.execute(this.db);
    return r.rows.length;
  }
}

export function toStoredEvent(r: Selectable<OutboxEventsTable>): StoredEvent {
  const snapshot = (
    typeof r.snapshot === "string" ? JSON.parse(r.snapshot) : r.snapshot
  ) as Selectable<ImagesTable>;
  return {
    seq: Number(r.seq),
    txid: Number(r.txid),
    id: r.id,
    type: r.type as OutboxEventType,
    ownerId: r.owner_id,
    imageId: r.image_id,
    image: toRecord(snapshot),
    createdAt: new Date(r.created_at),
  };
}
