import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type {
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { Metrics } from "../metrics.ts";
import type { AuthService, Principal } from "../services/auth.ts";
import type { ClaimsService } from "../services/claims.ts";
import type { DeliveryService } from "../services/delivery.ts";
import type { EventsFeed } from "../services/events-feed.ts";
import type { UrlBuilder } from "../services/image-view.ts";
import type { ImagesService } from "../services/images.ts";
import type { ModerationDecisions } from "../services/moderation-decisions.ts";
import type { OwnerPurgeService } from "../services/owner-purge.ts";
import type { ProfilesService } from "../services/profiles.ts";
import type { ProxyUploadService } from "../services/proxy-upload.ts";
import type { QuotaService } from "../services/quotas.ts";
import type { StorageEventsService } from "../services/storage-events.ts";
import type { UploadCompletionService } from "../services/upload-completion.ts";
import type { UploadsService } from "../services/uploads.ts";
import type { VariantsService } from "../services/variants.ts";
import type { WebhooksService } from "../services/webhooks.ts";
import type { LocalObjectStore } from "../storage/local.ts";

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  Logger,
  TypeBoxTypeProvider
>;

/** What the HTTP layer may use: services only, never a repository or a driver (except the local storage endpoint). */
export interface HttpDeps {
  config: Config;
  auth: AuthService;
  uploads: UploadsService;
  /** POST /v1/images: the body streamed to the storage by the server. */
  proxyUploads: ProxyUploadService;
  completion: UploadCompletionService;
  kv: KeyValueStore;
  metrics: Metrics;
  images: ImagesService;
  ownerPurge: OwnerPurgeService;
  /** Per-owner quotas: GET /v1/usage and the admin overrides. */
  quotas: QuotaService;
  delivery: DeliveryService;
  variants: VariantsService;
  storageEvents: StorageEventsService;
  urls: UrlBuilder;
  /** Present when the embedded storage serves its own upload URLs. */
  localStorage: LocalObjectStore | null;
  readiness: () => Promise<Record<string, "ok" | string>>;
  claims: ClaimsService;
  profiles: ProfilesService;
  /** /v1/webhooks and GET /v1/events. */
  webhooks: WebhooksService;
  eventsFeed: EventsFeed;
  /** Decisions on held images (admin API, the hook's callback) and the hook's review reads. */
  moderation: ModerationDecisions;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}
