import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config } from "../config.ts";
import type { DatabaseBreaker } from "../db/breaker.ts";
import { EventsRepository } from "../db/events-repository.ts";
import { guardPort } from "../db/guarded-port.ts";
import type { Db } from "../db/schema.ts";
import { WebhookDeliveriesRepository } from "../db/webhook-deliveries-repository.ts";
import { WebhookEndpointsRepository } from "../db/webhook-endpoints-repository.ts";
import { HttpWebhookTransport } from "../webhooks/http-transport.ts";
import { webhookUrlCheck } from "../webhooks/url-check.ts";
import { EventsFeed } from "./events-feed.ts";
import type { UrlBuilder } from "./image-view.ts";
import { createWebhookMetrics } from "./webhook-metrics.ts";
import type { WebhookTransport } from "./webhook-ports.ts";
import { WebhookWorker } from "./webhook-worker.ts";
import { CONFIG_ENDPOINT_ID, WebhooksService } from "./webhooks.ts";

export interface Webhooks {
  service: WebhooksService;
  feed: EventsFeed;
  /** Delivers; started by the roles that run workers. */
  worker: WebhookWorker;
  /** Makes the configured endpoint (IMGUP_WEBHOOK_URL) match the configuration. */
  syncConfigured(): Promise<void>;
}

/** Wires outbound webhooks and the event feed from the configuration (called by app.ts). */
export function createWebhooks(deps: {
  db: Db;
  breaker: DatabaseBreaker;
  config: Config;
  urls: UrlBuilder;
  logger: Logger;
  registry: Registry;
  /** Tests: the clock of attempts and retries, and a transport of their own. */
  now?: (() => number) | undefined;
  transport?: WebhookTransport | undefined;
}): Webhooks {
  const settings = deps.config.webhooks;
  const endpoints = guardPort(new WebhookEndpointsRepository(deps.db), deps.breaker);
  const deliveries = guardPort(new WebhookDeliveriesRepository(deps.db), deps.breaker);
  const events = guardPort(new EventsRepository(deps.db), deps.breaker);
  const now = deps.now ?? Date.now;
  const metrics = createWebhookMetrics(deps.registry, {
    outboxLag: () => events.dispatchLagSeconds(),
    backlog: () => deliveries.backlog(new Date(now())),
  });
  const worker = new WebhookWorker({
    deliveries,
    endpoints,
    events,
    transport:
      deps.transport ??
      new HttpWebhookTransport({ allowPrivate: settings.allowPrivate, timeoutMs: settings.timeoutMs }),
    urls: deps.urls,
    settings,
    logger: deps.logger,
    metrics,
    now,
  });
  return {
    service: new WebhooksService({
      endpoints,
      deliveries,
      checkUrl: webhookUrlCheck({ allowPrivate: settings.allowPrivate }),
      now,
    }),
    feed: new EventsFeed({
      events,
      urls: deps.urls,
      maxWaitSeconds: settings.feedMaxWaitSeconds,
      pollMs: settings.feedPollMs,
    }),
    worker,
    syncConfigured: () =>
      endpoints.syncConfigured(
        settings.url && settings.secret
          ? {
              id: CONFIG_ENDPOINT_ID,
              ownerId: null,
              url: settings.url,
              events: settings.events,
              description: "IMGUP_WEBHOOK_URL",
              source: "config",
              secret: settings.secret,
            }
          : null,
      ),
  };
}
