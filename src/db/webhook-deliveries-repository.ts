import { sql } from "kysely";
import type { OutboxEventType } from "../domain/webhook-events.ts";
import { committedBelowXmin, type StoredEvent, toStoredEvent } from "./events-repository.ts";
import type { Db } from "./schema.ts";
import { toEndpoint, type WebhookEndpoint } from "./webhook-endpoints-repository.ts";

export type DeliveryStatus = "pending" | "succeeded" | "failed";

/** One event to one endpoint: the delivery log's row. */
export interface Delivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: OutboxEventType;
  imageId: string;
  status: DeliveryStatus;
  replay: boolean;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

/** A delivery a worker holds the lease of, with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  leaseToken: string;
  /** Including this one. */
  attempts: number;
  endpoint: WebhookEndpoint;
  event: StoredEvent;
}

const MAX_ERROR_LENGTH = 500;

export class WebhookDeliveriesRepository {
  constructor(private readonly db: Db) {}

  /**
   * Fans the next committed events out to the endpoints that want them, in log order, and moves the
   * shared position past them; one dispatcher at a time (the position row is locked, others skip).
   * Returns how many events it passed (0: caught up, or another instance is dispatching).
   */
  async dispatch(limit: number, now: Date): Promise<{ events: number; deliveries: number }> {
    return this.db.transaction().execute(async (trx) => {
      const pos = await sql<{ txid: number; seq: number }>`
        select txid, seq from webhook_dispatch where id = 1 for update skip locked
      `.execute(trx);
      const at = pos.rows[0];
      if (!at) return { events: 0, deliveries: 0 };
      const r = await sql<{ events: number; deliveries: number }>`
        with batch as (
          select seq, txid, owner_id, image_id, type, created_at from outbox_events
          where (txid, seq) > (${at.txid}::int8, ${at.seq}::int8) and ${committedBelowXmin}
          order by txid, seq limit ${limit}
        ), queued as (
          insert into webhook_deliveries (endpoint_id, event_seq, image_id, next_attempt_at)
          select e.id, b.seq, b.image_id, ${now}::timestamptz
          from batch b join webhook_endpoints e
            on (e.owner_id = b.owner_id or e.owner_id is null)
            and e.disabled_at is null
            and e.created_at <= b.created_at
            and (e.events = '' or (' ' || e.events || ' ') like ('% ' || b.type || ' %'))
          order by b.txid, b.seq, e.id
          returning id
        ), last as (
          select txid, seq from batch order by txid desc, seq desc limit 1
        ), moved as (
          update webhook_dispatch d set txid = last.txid, seq = last.seq from last where d.id = 1 returning d.id
        )
        select (select count(*) from batch)::int as events, (select count(*) from queued)::int as deliveries
      `.execute(trx);
      return { events: Number(r.rows[0]?.events ?? 0), deliveries: Number(r.rows[0]?.deliveries ?? 0) };
    });
  }

  /**
   * Leases due deliveries of enabled endpoints. A delivery waits while an earlier one of the same
   * image to the same endpoint is still pending (in flight or retrying): per-image order.
   */
  async claim(limit: number, now: Date, leaseMs: number): Promise<ClaimedDelivery[]> {
    const claimed = await sql<{
      id: number;
      lease_token: string;
      attempts: number;
      endpoint_id: string;
      event_seq: number;
    }>`
      with due as (
        select d.id from webhook_deliveries d
        join webhook_endpoints e on e.id = d.endpoint_id and e.disabled_at is null
        where d.status = 'pending' and d.next_attempt_at <= ${now}::timestamptz
          and (d.locked_until is null or d.locked_until < ${now}::timestamptz)
          and not exists (
            select 1 from webhook_deliveries p
            where p.endpoint_id = d.endpoint_id and p.image_id = d.image_id
              and p.status = 'pending' and p.id < d.id
          )
        order by d.next_attempt_at, d.id
        limit ${limit}
        for update of d skip locked
      )
      update webhook_deliveries d set
        attempts = d.attempts + 1,
        locked_until = ${new Date(now.getTime() + leaseMs)}::timestamptz,
        lease_token = gen_random_uuid()::text
      from due where d.id = due.id
      returning d.id, d.lease_token, d.attempts, d.endpoint_id, d.event_seq
    `.execute(this.db);
    if (claimed.rows.length === 0) return [];
    const endpoints = await this.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "in", [...new Set(claimed.rows.map((r) => r.endpoint_id))])
      .execute();
    const events = await this.db
      .selectFrom("outbox_events")
      .selectAll()
      .where("seq", "in", [...new Set(claimed.rows.map((r) => Number(r.event_seq)))])
      .execute();
    const byEndpoint = new Map(endpoints.map((e) => [e.id, toEndpoint(e)]));
    const byEvent = new Map(events.map((e) => [Number(e.seq), toStoredEvent(e)]));
    return claimed.rows
      .sort((a, b) => Number(a.id) - Number(b.id))
      .flatMap((r) => {
        const endpoint = byEndpoint.get(r.endpoint_id);
        const event = byEvent.get(Number(r.event_seq));
        return endpoint && event
          ? [{ id: String(r.id), leaseToken: r.lease_token, attempts: r.attempts, endpoint, event }]
          : [];
      });
  }

  /** Records an attempt's outcome; `next` null with ok false: given up. False when the lease was lost. */
  async settle(
    d: Pick<ClaimedDelivery, "id" | "leaseToken">,
    outcome: { ok: boolean; statusCode: number | null; error: string | null; at: Date; next: Date | null },
  ): Promise<boolean> {
    const status: DeliveryStatus = outcome.ok ? "succeeded" : outcome.next ? "pending" : "failed";
    const row = await this.db
      .updateTable("webhook_deliveries")
      .set({
        status,
        locked_until: null,
        lease_token: null,
        last_attempt_at: outcome.at,
        last_status_code: outcome.statusCode,
        last_error: outcome.error?.slice(0, MAX_ERROR_LENGTH) ?? null,
        ...(outcome.next ? { next_attempt_at: outcome.next } : {}),
        ...(outcome.ok ? { delivered_at: outcome.at } : {}),
      })
      .where("id", "=", Number(d.id))
      .where("lease_token", "=", d.leaseToken)
      .returning("id")
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The endpoint's deliveries, newest first; `before` is the last id of the previous page. */
  async list(endpointId: string, limit: number, before?: string): Promise<Delivery[]> {
    let q = this.db
      .selectFrom("webhook_deliveries as d")
      .innerJoin("outbox_events as e", "e.seq", "d.event_seq")
      .selectAll("d")
      .select(["e.id as event_id", "e.type as event_type"])
      .where("d.endpoint_id", "=", endpointId)
      .orderBy("d.id", "desc")
      .limit(limit);
    if (before !== undefined) q = q.where("d.id", "<", Number(before));
    return (await q.execute()).map((r) => ({
      id: String(r.id),
      endpointId: r.endpoint_id,
      eventId: r.event_id,
      eventType: r.event_type as OutboxEventType,
      imageId: r.image_id,
      status: r.status as DeliveryStatus,
      replay: r.replay,
      attempts: r.attempts,
      nextAttemptAt: r.status === "pending" ? new Date(r.next_attempt_at) : null,
      lastAttemptAt: r.last_attempt_at ? new Date(r.last_attempt_at) : null,
      lastStatusCode: r.last_status_code,
      lastError: r.last_error,
      deliveredAt: r.delivered_at ? new Date(r.delivered_at) : null,
      createdAt: new Date(r.created_at),
    }));
  }

  /**
   * Queues the endpoint's events again: one (by id) or every one since a time, in log order, with
   * the endpoint's owner scope and type filter. How many it queued.
   */
  async replay(
    endpoint: Pick<WebhookEndpoint, "id" | "ownerId" | "events">,
    which: { eventId: string } | { since: Date },
    now: Date,
    limit: number,
  ): Promise<number> {
    const r = await sql<{ id: number }>`
      insert into webhook_deliveries (endpoint_id, event_seq, image_id, next_attempt_at, replay)
      select ${endpoint.id}, ev.seq, ev.image_id, ${now}::timestamptz, true from (
        select seq, image_id, txid from outbox_events
        where ${"eventId" in which ? sql`id = ${which.eventId}` : sql`created_at >= ${which.since}::timestamptz and ${committedBelowXmin}`}
          and ${endpoint.ownerId === null ? sql`true` : sql`owner_id = ${endpoint.ownerId}`}
          and ${endpoint.events.length === 0 || "eventId" in which ? sql`true` : sql`type in (${sql.join(endpoint.events)})`}
        order by txid, seq limit ${limit}
      ) ev
      order by ev.txid, ev.seq
      returning id
    `.execute(this.db);
    return r.rows.length;
  }

  /** Pending deliveries (due or waiting) and the age of the oldest due one, for the metrics. */
  async backlog(now: Date): Promise<{ pending: number; oldestDueSeconds: number }> {
    const r = await sql<{ pending: number; oldest: Date | null }>`
      select count(*)::int as pending,
        min(next_attempt_at) filter (where next_attempt_at <= ${now}::timestamptz) as oldest
      from webhook_deliveries where status = 'pending'
    `.execute(this.db);
    const row = r.rows[0];
    const oldest = row?.oldest ? new Date(row.oldest).getTime() : null;
    return {
      pending: Number(row?.pending ?? 0),
      oldestDueSeconds: oldest === null ? 0 : Math.max(0, (now.getTime() - oldest) / 1000),
    };
  }
}
