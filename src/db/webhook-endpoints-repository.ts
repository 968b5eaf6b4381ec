import type { Selectable } from "kysely";
import { isOutboxEventType, type OutboxEventType } from "../domain/webhook-events.ts";
import type { Db, WebhookEndpointsTable } from "./schema.ts";

export interface WebhookEndpoint {
  id: string;
  /** null: deployment-wide, every owner's events. */
  ownerId: string | null;
  url: string;
  /** Empty: every type. */
  events: OutboxEventType[];
  description: string;
  source: "api" | "config";
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  consecutiveFailures: number;
  failingSince: Date | null;
  disabledAt: Date | null;
  disabledReason: string | null;
  createdAt: Date;
}

export type NewWebhookEndpoint = Pick<
  WebhookEndpoint,
  "id" | "ownerId" | "url" | "events" | "description" | "source" | "secret"
>;

export class WebhookEndpointsRepository {
  constructor(private readonly db: Db) {}

  async create(e: NewWebhookEndpoint): Promise<WebhookEndpoint> {
    const row = await this.db
      .insertInto("webhook_endpoints")
      .values({ ...toColumns(e), created_at: new Date(), updated_at: new Date() })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toEndpoint(row);
  }

  /** The endpoint the configuration declares, kept in step with it at each start (or removed). */
  async syncConfigured(e: NewWebhookEndpoint | null): Promise<void> {
    if (!e) {
      await this.db.deleteFrom("webhook_endpoints").where("source", "=", "config").execute();
      return;
    }
    await this.db
      .insertInto("webhook_endpoints")
      .values({ ...toColumns(e), created_at: new Date(), updated_at: new Date() })
      .onConflict((oc) =>
        oc
          .column("id")
          .doUpdateSet({ url: e.url, events: e.events.join(" "), secret: e.secret, updated_at: new Date() }),
      )
      .execute();
  }

  async get(id: string): Promise<WebhookEndpoint | null> {
    const row = await this.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? toEndpoint(row) : null;
  }

  /** The owner's endpoints; with `deployment`, the deployment-wide ones too. Oldest first. */
  async list(ownerId: string, deployment: boolean): Promise<WebhookEndpoint[]> {
    const rows = await this.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where((eb) =>
        deployment
          ? eb.or([eb("owner_id", "=", ownerId), eb("owner_id", "is", null)])
          : eb("owner_id", "=", ownerId),
      )
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toEndpoint);
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("webhook_endpoints").where("id", "=", id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async update(
    id: string,
    patch: { url?: string; events?: OutboxEventType[]; description?: string; enable?: boolean },
  ): Promise<WebhookEndpoint | null> {
    const set: Record<string, unknown> = { updated_at: new Date() };
    if (patch.url !== undefined) set.url = patch.url;
    if (patch.events !== undefined) set.events = patch.events.join(" ");
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.enable)
      Object.assign(set, {
        disabled_at: null,
        disabled_reason: null,
        consecutive_failures: 0,
        failing_since: null,
      });
    const row = await this.db
      .updateTable("webhook_endpoints")
      .set(set)
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row ? toEndpoint(row) : null;
  }

  /** The new secret signs from now on; the old one is also signed with until `previousExpiresAt`. */
  async rotate(id: string, secret: string, previousExpiresAt: Date): Promise<WebhookEndpoint | null> {
    const row = await this.db
      .updateTable("webhook_endpoints")
      .set((eb) => ({
        previous_secret: eb.ref("secret"),
        previous_secret_expires_at: previousExpiresAt,
        secret,
        updated_at: new Date(),
      }))
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row ? toEndpoint(row) : null;
  }

  async recordSuccess(id: string): Promise<void> {
    await this.db
      .updateTable("webhook_endpoints")
      .set({ consecutive_failures: 0, failing_since: null })
      .where("id", "=", id)
      .where("consecutive_failures", ">", 0)
      .execute();
  }

  /** Counts a failed attempt; the endpoint as it now stands. */
  async recordFailure(id: string, now: Date): Promise<WebhookEndpoint | null> {
    const row = await this.db
      .updateTable("webhook_endpoints")
      .set((eb) => ({
        consecutive_failures: eb("consecutive_failures", "+", 1),
        failing_since: eb.fn.coalesce("failing_since", eb.val(now)),
      }))
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row ? toEndpoint(row) : null;
  }

  async disable(id: string, now: Date, reason: string): Promise<void> {
    await this.db
      .updateTable("webhook_endpoints")
      .set({ disabled_at: now, disabled_reason: reason, updated_at: now })
      .where("id", "=", id)
      .where("disabled_at", "is", null)
      .execute();
  }
}

function toColumns(e: NewWebhookEndpoint) {
  return {
    id: e.id,
    owner_id: e.ownerId,
    url: e.url,
    events: e.events.join(" "),
    description: e.description,
    source: e.source,
    secret: e.secret,
  };
}

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

export function toEndpoint(r: Selectable<WebhookEndpointsTable>): WebhookEndpoint {
  return {
    id: r.id,
    ownerId: r.owner_id,
    url: r.url,
    events: r.events.split(" ").filter(isOutboxEventType),
    description: r.description,
    source: r.source === "config" ? "config" : "api",
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretExpiresAt: date(r.previous_secret_expires_at),
    consecutiveFailures: r.consecutive_failures,
    failingSince: date(r.failing_since),
    disabledAt: date(r.disabled_at),
    disabledReason: r.disabled_reason,
    createdAt: new Date(r.created_at),
  };
}
