import { Type } from "typebox";
import { OUTBOX_EVENT_TYPES, type OutboxEventType } from "../../domain/webhook-events.ts";
import type { Delivery, WebhookEndpoint } from "../../services/webhooks.ts";
import { ImageSchema, ref } from "../schemas.ts";

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T, description: string) =>
  Type.Union([t, Type.Null()], { description });

export const EventTypeSchema = Type.Unsafe<OutboxEventType>({
  $id: "EventType",
  type: "string",
  enum: [...OUTBOX_EVENT_TYPES],
  description: "An app event: image.ready, image.rejected, image.deleted, image.expired, image.claimed",
});

export const WebhookIdSchema = Type.String({ pattern: "^wh_[A-Za-z0-9_]{1,64}$", description: "wh_…" });

export const AppEventSchema = Type.Object(
  {
    id: Type.String({ description: "evt_…: the webhook-id header; the same across retries and replays" }),
    type: ref(EventTypeSchema),
    timestamp: Type.String({ format: "date-time", description: "when the change happened" }),
    data: ref(ImageSchema, { description: "the image as the change left it" }),
  },
  { $id: "AppEvent", description: "What a webhook carries and GET /v1/events lists: the same JSON" },
);

export const WebhookEndpointSchema = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Type.Array(ref(EventTypeSchema), { description: "the types it gets; empty: every type" }),
    description: Type.String(),
    scope: Type.Union([Type.Literal("owner"), Type.Literal("deployment")], {
      description: "deployment: every owner's events (admin or configuration)",
    }),
    source: Type.Union([Type.Literal("api"), Type.Literal("config")], {
      description: "config: IMGUP_WEBHOOK_URL; changed through the configuration only",
    }),
    enabled: Type.Boolean(),
    disabledAt: Nullable(Type.String({ format: "date-time" }), "when imgup turned it off"),
    disabledReason: Nullable(Type.String(), "why: the failures that turned it off"),
    consecutiveFailures: Type.Integer({ minimum: 0 }),
    failingSince: Nullable(Type.String({ format: "date-time" }), "first failure since the last success"),
    previousSecretExpiresAt: Nullable(
      Type.String({ format: "date-time" }),
      "after a rotation: until when the old secret signs too",
    ),
    createdAt: Type.String({ format: "date-time" }),
  },
  { $id: "WebhookEndpoint", description: "A webhook endpoint, without its secret" },
);

export const WebhookEndpointListSchema = Type.Object(
  { items: Type.Array(ref(WebhookEndpointSchema)) },
  {
    $id: "WebhookEndpointList",
    description: "The caller's endpoints (admins: and the deployment-wide ones)",
  },
);

export const WebhookWithSecretSchema = Type.Object(
  {
    endpoint: ref(WebhookEndpointSchema),
    secret: Type.String({ description: "whsec_…: verifies the signatures; shown this once" }),
  },
  { $id: "WebhookWithSecret", description: "An endpoint and its signing secret" },
);

export const DeliverySchema = Type.Object(
  {
    id: Type.String(),
    eventId: Type.String(),
    eventType: ref(EventTypeSchema),
    imageId: Type.String(),
    status: Type.Union([Type.Literal("pending"), Type.Literal("succeeded"), Type.Literal("failed")], {
      description: "failed: every scheduled attempt failed",
    }),
    replay: Type.Boolean({ description: "queued by a replay" }),
    attempts: Type.Integer({ minimum: 0 }),
    nextAttemptAt: Nullable(Type.String({ format: "date-time" }), "pending only"),
    lastAttemptAt: Nullable(Type.String({ format: "date-time" }), "the latest attempt"),
    lastStatusCode: Type.Union([Type.Integer(), Type.Null()], { description: "the latest answer's status" }),
    lastError: Nullable(Type.String(), "what went wrong with the latest attempt"),
    deliveredAt: Nullable(Type.String({ format: "date-time" }), "when a 2xx came back"),
    createdAt: Type.String({ format: "date-time" }),
  },
  { $id: "WebhookDelivery", description: "One event to one endpoint" },
);

export const DeliveryListSchema = Type.Object(
  {
    items: Type.Array(ref(DeliverySchema)),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: "pass back as `cursor`" }),
  },
  { $id: "WebhookDeliveryList", description: "Deliveries, newest first" },
);

export const EventListSchema = Type.Object(
  {
    events: Type.Array(ref(AppEventSchema)),
    cursor: Type.String({ description: "pass back as `after` for the events that follow" }),
  },
  { $id: "EventList", description: "App events in the order they happened" },
);

export const WEBHOOK_SCHEMAS = [
  EventTypeSchema,
  AppEventSchema,
  WebhookEndpointSchema,
  WebhookEndpointListSchema,
  WebhookWithSecretSchema,
  DeliverySchema,
  DeliveryListSchema,
  EventListSchema,
];

const iso = (d: Date | null) => d?.toISOString() ?? null;

export const toEndpointView = (e: WebhookEndpoint) => ({
  id: e.id,
  url: e.url,
  events: e.events,
  description: e.description,
  scope: e.ownerId === null ? ("deployment" as const) : ("owner" as const),
  source: e.source,
  enabled: e.disabledAt === null,
  disabledAt: iso(e.disabledAt),
  disabledReason: e.disabledReason,
  consecutiveFailures: e.consecutiveFailures,
  failingSince: iso(e.failingSince),
  previousSecretExpiresAt: iso(e.previousSecretExpiresAt),
  createdAt: e.createdAt.toISOString(),
});

export const toDeliveryView = (d: Delivery) => ({
  id: d.id,
  eventId: d.eventId,
  eventType: d.eventType,
  imageId: d.imageId,
  status: d.status,
  replay: d.replay,
  attempts: d.attempts,
  nextAttemptAt: iso(d.nextAttemptAt),
  lastAttemptAt: iso(d.lastAttemptAt),
  lastStatusCode: d.lastStatusCode,
  lastError: d.lastError,
  deliveredAt: iso(d.deliveredAt),
  createdAt: d.createdAt.toISOString(),
});
