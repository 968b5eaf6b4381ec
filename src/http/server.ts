import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import type { Logger } from "pino";
import { registerApiAuthentication } from "./plugins/api-auth.ts";
import { registerCompression } from "./plugins/compress.ts";
import { registerCors } from "./plugins/cors.ts";
import { frameworkErrors, registerErrorHandling } from "./plugins/errors.ts";
import { registerMethodHandling } from "./plugins/methods.ts";
import { RequestLogController, registerObservability } from "./plugins/observability.ts";
import { registerWireLimits, serverTimeouts } from "./plugins/wire-limits.ts";
import { registerApproveImage } from "./routes/admin-images-approve.ts";
import { registerAdminGetImage } from "./routes/admin-images-get.ts";
import { registerRejectImage } from "./routes/admin-images-reject.ts";
import { registerCreateApiKey } from "./routes/admin-keys-create.ts";
import { registerListApiKeys } from "./routes/admin-keys-list.ts";
import { registerRevokeApiKey } from "./routes/admin-keys-revoke.ts";
import { registerDeleteProfile } from "./routes/admin-profiles-delete.ts";
import { registerGetProfile } from "./routes/admin-profiles-get.ts";
import { registerListProfiles } from "./routes/admin-profiles-list.ts";
import { registerPutProfile } from "./routes/admin-profiles-put.ts";
import { registerDeleteOwnerQuota } from "./routes/admin-quota-delete.ts";
import { registerGetOwnerQuota } from "./routes/admin-quota-get.ts";
import { registerPutOwnerQuota } from "./routes/admin-quota-put.ts";
import { registerDemoPage } from "./routes/demo-page.ts";
import { registerApiReference } from "./routes/docs-page.ts";
import { registerStorageEventsWebhook } from "./routes/events-storage.ts";
import { registerHealth } from "./routes/health.ts";
import { registerClaimImage } from "./routes/images-claim.ts";
import { registerCreateImage } from "./routes/images-create.ts";
import { registerDeleteImage } from "./routes/images-delete.ts";
import { registerGetImage } from "./routes/images-get.ts";
import { registerListImages } from "./routes/images-list.ts";
import { registerPatchImage } from "./routes/images-patch.ts";
import { registerImageUrls } from "./routes/images-urls.ts";
import { registerMetrics } from "./routes/metrics.ts";
import { registerModerationCallback } from "./routes/moderation-callback.ts";
import { registerModerationOriginal } from "./routes/moderation-original.ts";
import { registerOpenApi } from "./routes/openapi.ts";
import { registerGetOriginal } from "./routes/originals-get.ts";
import { registerOwnerPurge } from "./routes/owners-purge.ts";
import { registerLocalStorage } from "./routes/storage-local.ts";
import { registerAbortUpload } from "./routes/uploads-abort.ts";
import { registerCompleteUpload } from "./routes/uploads-complete.ts";
import { registerCreateUpload } from "./routes/uploads-create.ts";
import { registerUploadParts } from "./routes/uploads-parts.ts";
import { registerGetUsage } from "./routes/usage-get.ts";
import { registerGetVariants } from "./routes/variants-get.ts";
import { registerWebhookRoutes } from "./routes/webhooks.ts";
import type { App, HttpDeps } from "./types.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the Fastify app with every route; listening is the caller's business. */
export async function buildHttpServer(deps: HttpDeps, logger: Logger): Promise<App> {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: deps.config.http.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    },
    ajv: {
      // Unknown JSON fields are an error, not silently dropped.
      customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false },
    },
    ...serverTimeouts(deps.config.http),
    // request.ip (rate limits, logs) is the client's, not the proxy's, only behind proxies named here.
    // Fastify takes any of these; the union itself trips its overloads (http vs http2), hence the cast.
    trustProxy: deps.config.http.trustProxy as boolean,
    frameworkErrors,
    // One line per request instead of Fastify's two; see RequestLogController.
    logController: new RequestLogController(),
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest("principal", null);
  app.addHook("onSend", async (request, reply) => {
    reply.header("X-Request-Id", request.id);
    if (!reply.hasHeader("X-Content-Type-Options")) reply.header("X-Content-Type-Options", "nosniff");
  });
  registerErrorHandling(app);
  registerObservability(app, deps.metrics);
  registerWireLimits(app, deps.config.http);
  // Before authentication: a preflight carries no credentials. Then 405/OPTIONS, which reads it.
  await registerCors(app, deps.config.cors);
  registerMethodHandling(app);
  await registerCompression(app);
  // Before any route: /v1 is authenticated unless a route opts out.
  registerApiAuthentication(app, deps);

  // First, and loaded at once: it collects the routes added after it.
  await registerOpenApi(app, deps);
  registerHealth(app, deps);
  registerMetrics(app, deps);
  registerCreateUpload(app, deps);
  registerUploadParts(app, deps);
  registerCompleteUpload(app, deps);
  registerAbortUpload(app, deps);
  registerCreateImage(app, deps);
  registerGetImage(app, deps);
  registerListImages(app, deps);
  registerPatchImage(app, deps);
  registerDeleteImage(app, deps);
  registerImageUrls(app, deps);
  registerOwnerPurge(app, deps);
  registerCreateApiKey(app, deps);
  registerListApiKeys(app, deps);
  registerRevokeApiKey(app, deps);
  registerGetUsage(app, deps);
  registerGetOwnerQuota(app, deps);
  registerPutOwnerQuota(app, deps);
  registerDeleteOwnerQuota(app, deps);
  registerGetOriginal(app, deps);
  registerGetVariants(app, deps);
  registerLocalStorage(app, deps);
  registerStorageEventsWebhook(app, deps);
  registerClaimImage(app, deps);
  registerListProfiles(app, deps);
  registerGetProfile(app, deps);
  registerPutProfile(app, deps);
  registerDeleteProfile(app, deps);
  registerWebhookRoutes(app, deps);
  registerAdminGetImage(app, deps);
  registerApproveImage(app, deps);
  registerRejectImage(app, deps);
  registerModerationCallback(app, deps);
  registerModerationOriginal(app, deps);
  registerDemoPage(app, deps);
  await registerApiReference(app, deps);
  return app;
}
