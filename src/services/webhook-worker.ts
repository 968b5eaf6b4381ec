import type { Logger } from "pino";
import type { WebhookSettings } from "../config.ts";
import type { EventsRepository } from "../db/events-repository.ts";
import type { ClaimedDelivery, WebhookDeliveriesRepository } from "../db/webhook-deliveries-repository.ts";
import type { WebhookEndpointsRepository } from "../db/webhook-endpoints-repository.ts";
import { retryDelayMs, shouldDisable } from "../domain/webhook-retry.ts";
import { signatureHeader } from "../domain/webhook-signature.ts";
import type { UrlBuilder } from "./image-view.ts";
import type { WebhookMetrics } from "./webhook-metrics.ts";
import { renderEvent } from "./webhook-payload.ts";
import type { WebhookTransport } from "./webhook-ports.ts";

export interface WebhookWorkerDeps {
  deliveries: Pick<WebhookDeliveriesRepository, "dispatch" | "claim" | "settle">;
  endpoints: Pick<WebhookEndpointsRepository, "recordSuccess" | "recordFailure" | "disable">;
  events?: Pick<EventsRepository, "prune">;
  transport: WebhookTransport;
  urls: UrlBuilder;
  settings: Pick<
    WebhookSettings,
    | "retryScheduleMs"
    | "retryJitter"
    | "timeoutMs"
    | "disableAfterMs"
    | "disableAfterFailures"
    | "pollIntervalMs"
    | "concurrency"
    | "retentionMs"
  >;
  logger: Logger;
  metrics?: Pick<WebhookMetrics, "deliveries" | "disabled">;
  /** The clock of attempts, retries and disabling (tests move it). */
  now?: () => number;
  random?: () => number;
}

const DISPATCH_BATCH = 500;
const PRUNE_EVERY_MS = 3600_000;

/**
 * Delivers app events to webhook endpoints: fans new outbox events out into deliveries, leases due
 * ones (several workers are safe), signs and sends them, and schedules retries. At least once: a
 * crash after sending and before recording resends after the lease lapses, with the same webhook-id.
 */
export class WebhookWorker {
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private inFlight = new Set<Promise<void>>();
  private ticking: Promise<void> | null = null;
  private again = false;
  private lastPrune = 0;

  constructor(private readonly deps: WebhookWorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Look now instead of at the next poll (an event was just written, a test moved the clock). */
  wake(): void {
    if (!this.stopped) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ticking = this.tick().finally(() => {
        this.ticking = null;
      });
    }, ms);
    this.timer.unref();
  }

  /** One pass: fan out, then fill the free delivery slots. */
  async tick(): Promise<void> {
    this.running = true;
    this.again = false;
    let busy = false;
    try {
      const at = new Date(this.now());
      for (let i = 0; i < 20; i++) {
        const { events } = await this.deps.deliveries.dispatch(DISPATCH_BATCH, at);
        if (events < DISPATCH_BATCH) break;
      }
      const free = this.deps.settings.concurrency - this.inFlight.size;
      if (free > 0) {
        // The lease outlives the attempt's own deadline, so no other worker takes it while it runs.
        const claimed = await this.deps.deliveries.claim(free, at, this.deps.settings.timeoutMs * 2 + 5000);
        busy = claimed.length === free;
        for (const d of claimed) {
          const p = this.deliver(d).finally(() => {
            this.inFlight.delete(p);
            this.wake();
          });
          this.inFlight.add(p);
        }
      }
      await this.prune(at);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, "webhook delivery pass failed; retrying");
    } finally {
      this.running = false;
    }
    this.schedule(busy || this.again ? 0 : this.deps.settings.pollIntervalMs);
  }

  private async prune(at: Date): Promise<void> {
    if (!this.deps.events || at.getTime() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = at.getTime();
    const removed = await this.deps.events.prune(
      new Date(at.getTime() - this.deps.settings.retentionMs),
      10_000,
    );
    if (removed > 0) this.deps.logger.info({ removed }, "old app events pruned");
  }

  /** Sends one delivery and records what happened. Never throws. */
  async deliver(d: ClaimedDelivery): Promise<void> {
    const { settings, logger } = this.deps;
    try {
      const sentAt = this.now();
      const ts = Math.floor(sentAt / 1000);
      const body = JSON.stringify(renderEvent(d.event, this.deps.urls));
      const secrets = [d.endpoint.secret];
      if (d.endpoint.previousSecret && (d.endpoint.previousSecretExpiresAt?.getTime() ?? 0) > sentAt) {
        secrets.push(d.endpoint.previousSecret);
      }
      const result = await this.deps.transport.send({
        url: d.endpoint.url,
        body,
        headers: {
          "webhook-id": d.event.id,
          "webhook-timestamp": String(ts),
          "webhook-signature": signatureHeader(secrets, d.event.id, ts, body),
        },
      });
      const at = new Date(this.now());
      if (result.ok) {
        await this.deps.deliveries.settle(d, { ...result, at, next: null });
        await this.deps.endpoints.recordSuccess(d.endpoint.id);
        this.deps.metrics?.deliveries.inc({ outcome: "delivered" });
        return;
      }
      const delay = retryDelayMs(d.attempts, settings.retryScheduleMs, settings.retryJitter, this.random);
      const next = delay === null ? null : new Date(at.getTime() + delay);
      await this.deps.deliveries.settle(d, { ...result, at, next });
      this.deps.metrics?.deliveries.inc({ outcome: next ? "retrying" : "failed" });
      logger.info(
        { endpointId: d.endpoint.id, eventId: d.event.id, attempt: d.attempts, error: result.error, next },
        "webhook delivery failed",
      );
      const state = await this.deps.endpoints.recordFailure(d.endpoint.id, at);
      const policy = { afterMs: settings.disableAfterMs, afterFailures: settings.disableAfterFailures };
      if (state && !state.disabledAt && shouldDisable(state, at.getTime(), policy)) {
        const reason =
          `${state.consecutiveFailures} consecutive failed attempts since ` +
          `${state.failingSince?.toISOString()}; last: ${result.error ?? "failed"}`;
        await this.deps.endpoints.disable(d.endpoint.id, at, reason);
        this.deps.metrics?.disabled.inc();
        logger.warn({ endpointId: d.endpoint.id, reason }, "webhook endpoint disabled");
      }
    } catch (err) {
      // The lease lapses and another pass tries again.
      logger.warn({ err: (err as Error).message, deliveryId: d.id }, "recording a webhook delivery failed");
    }
  }
}
