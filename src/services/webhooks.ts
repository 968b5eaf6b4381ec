import { randomBytes } from "node:crypto";
import type { Delivery, WebhookDeliveriesRepository } from "../db/webhook-deliveries-repository.ts";
import type { WebhookEndpoint, WebhookEndpointsRepository } from "../db/webhook-endpoints-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { OutboxEventType } from "../domain/webhook-events.ts";
import { newWebhookSecret } from "../domain/webhook-signature.ts";
import type { Principal } from "./auth.ts";
import type { WebhookUrlCheck } from "./webhook-ports.ts";

export const CONFIG_ENDPOINT_ID = "wh_config";
/** How long a rotated-out secret still signs, unless the caller says otherwise. */
const DEFAULT_OVERLAP_SECONDS = 24 * 3600;
const MAX_REPLAY = 10_000;

export interface CreateEndpointInput {
  url: string;
  events?: OutboxEventType[] | undefined;
  description?: string | undefined;
  /** "deployment": every owner's events (admin only). */
  scope?: "owner" | "deployment" | undefined;
}

/** The webhook endpoints API: owner-scoped; deployment-wide endpoints are the admin's. */
export class WebhooksService {
  constructor(
    private readonly deps: {
      endpoints: Omit<WebhookEndpointsRepository, "recordSuccess" | "recordFailure" | "disable">;
      deliveries: Pick<WebhookDeliveriesRepository, "list" | "replay">;
      checkUrl: WebhookUrlCheck;
      now?: () => number;
    },
  ) {}

  private now(): Date {
    return new Date((this.deps.now ?? Date.now)());
  }

  async create(
    p: Principal,
    input: CreateEndpointInput,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const deployment = input.scope === "deployment";
    if (deployment && !p.scopes.has("admin"))
      throw ERRORS.forbidden("a deployment-wide endpoint needs the admin scope");
    await this.deps.checkUrl(input.url);
    const secret = newWebhookSecret();
    const endpoint = await this.deps.endpoints.create({
      id: `wh_${randomBytes(12).toString("hex")}`,
      ownerId: deployment ? null : p.ownerId,
      url: input.url,
      events: [...new Set(input.events ?? [])],
      description: input.description ?? "",
      source: "api",
      secret,
    });
    return { endpoint, secret };
  }

  list(p: Principal): Promise<WebhookEndpoint[]> {
    return this.deps.endpoints.list(p.ownerId, p.scopes.has("admin"));
  }

  /** The endpoint if the caller may see it: its own, or (admin) a deployment-wide one; else 404. */
  async get(p: Principal, id: string): Promise<WebhookEndpoint> {
    const e = await this.deps.endpoints.get(id);
    if (!e || !(e.ownerId === p.ownerId || (e.ownerId === null && p.scopes.has("admin")))) {
      throw ERRORS.webhookNotFound();
    }
    return e;
  }

  private async editable(p: Principal, id: string): Promise<WebhookEndpoint> {
    const e = await this.get(p, id);
    if (e.source === "config")
      throw ERRORS.webhookManagedByConfig("change IMGUP_WEBHOOK_URL / IMGUP_WEBHOOK_SECRET instead");
    return e;
  }

  async delete(p: Principal, id: string): Promise<void> {
    await this.editable(p, id);
    if (!(await this.deps.endpoints.delete(id))) throw ERRORS.webhookNotFound();
  }

  /** Changes the URL or types, or re-enables a disabled endpoint (`enabled: true`). */
  async update(
    p: Principal,
    id: string,
    patch: {
      url?: string | undefined;
      events?: OutboxEventType[] | undefined;
      description?: string | undefined;
      enabled?: boolean | undefined;
    },
  ): Promise<WebhookEndpoint> {
    const e =
      patch.url === undefined && patch.events === undefined && patch.description === undefined
        ? await this.get(p, id)
        : await this.editable(p, id);
    if (patch.enabled === false)
      throw ERRORS.validation("endpoints are disabled by imgup only; delete one to stop it");
    if (patch.url !== undefined) await this.deps.checkUrl(patch.url);
    const updated = await this.deps.endpoints.update(e.id, {
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.events !== undefined ? { events: [...new Set(patch.events)] } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      enable: patch.enabled === true,
    });
    if (!updated) throw ERRORS.webhookNotFound();
    return updated;
  }

  /** A new secret, returned this once; the old one keeps signing for `overlapSeconds` (both signatures sent). */
  async rotate(
    p: Principal,
    id: string,
    overlapSeconds?: number,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    await this.editable(p, id);
    const secret = newWebhookSecret();
    const until = new Date(this.now().getTime() + (overlapSeconds ?? DEFAULT_OVERLAP_SECONDS) * 1000);
    const endpoint = await this.deps.endpoints.rotate(id, secret, until);
    if (!endpoint) throw ERRORS.webhookNotFound();
    return { endpoint, secret };
  }

  async deliveries(
    p: Principal,
    id: string,
    page: { limit: number; before?: string | undefined },
  ): Promise<Delivery[]> {
    await this.get(p, id);
    return this.deps.deliveries.list(id, page.limit, page.before);
  }

  /** Queues one event again, or every event since a time; how many were queued. */
  async replay(p: Principal, id: string, which: { eventId: string } | { since: Date }): Promise<number> {
    const e = await this.get(p, id);
    const queued = await this.deps.deliveries.replay(e, which, this.now(), MAX_REPLAY);
    if ("eventId" in which && queued === 0) throw ERRORS.eventNotFound();
    return queued;
  }
}

export type { Delivery, WebhookEndpoint };
