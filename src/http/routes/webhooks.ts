import { addSharedSchemas } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { registerListEvents } from "./events-list.ts";
import { registerCreateWebhook } from "./webhooks-create.ts";
import { registerDeleteWebhook } from "./webhooks-delete.ts";
import { registerListWebhookDeliveries } from "./webhooks-deliveries.ts";
import { registerGetWebhook } from "./webhooks-get.ts";
import { registerListWebhooks } from "./webhooks-list.ts";
import { registerReplayWebhook } from "./webhooks-replay.ts";
import { registerRotateWebhookSecret } from "./webhooks-rotate.ts";
import { WEBHOOK_SCHEMAS } from "./webhooks-schemas.ts";
import { registerUpdateWebhook } from "./webhooks-update.ts";

/** The webhook endpoints API and the event feed (one route per file; their shared schemas once). */
export function registerWebhookRoutes(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, WEBHOOK_SCHEMAS);
  registerCreateWebhook(app, deps);
  registerListWebhooks(app, deps);
  registerGetWebhook(app, deps);
  registerUpdateWebhook(app, deps);
  registerDeleteWebhook(app, deps);
  registerRotateWebhookSecret(app, deps);
  registerListWebhookDeliveries(app, deps);
  registerReplayWebhook(app, deps);
  registerListEvents(app, deps);
}
