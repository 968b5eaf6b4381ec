import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import type { Logger } from "pino";
import { registerErrorHandling } from "./plugins/errors.ts";
import { registerStorageEventsWebhook } from "./routes/events-storage.ts";
import { registerHealth } from "./routes/health.ts";
import { registerDeleteImage } from "./routes/images-delete.ts";
import { registerGetImage } from "./routes/images-get.ts";
import { registerListImages } from "./routes/images-list.ts";
import { registerPatchImage } from "./routes/images-patch.ts";
import { registerMetrics } from "./routes/metrics.ts";
import { registerGetOriginal } from "./routes/originals-get.ts";
import { registerOwnerPurge } from "./routes/owners-purge.ts";
import { registerLocalStorage } from "./routes/storage-local.ts";
import { registerAbortUpload } from "./routes/uploads-abort.ts";
import { registerCompleteUpload } from "./routes/uploads-complete.ts";
import { registerCreateUpload } from "./routes/uploads-create.ts";
import { registerUploadParts } from "./routes/uploads-parts.ts";
import { registerGetVariants } from "./routes/variants-get.ts";
import type { App, HttpDeps } from "./types.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the Fastify app with every route; listening is the caller's business. */
export function buildHttpServer(deps: HttpDeps, logger: Logger): App {
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
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest("principal", null);
  app.addHook("onSend", async (request, reply) => {
    reply.header("X-Request-Id", request.id);
    if (!reply.hasHeader("X-Content-Type-Options")) reply.header("X-Content-Type-Options", "nosniff");
  });
  registerErrorHandling(app);

  registerHealth(app, deps);
  registerMetrics(app, deps);
  registerCreateUpload(app, deps);
  registerUploadParts(app, deps);
  registerCompleteUpload(app, deps);
  registerAbortUpload(app, deps);
  registerGetImage(app, deps);
  registerListImages(app, deps);
  registerPatchImage(app, deps);
  registerDeleteImage(app, deps);
  registerOwnerPurge(app, deps);
  registerGetOriginal(app, deps);
  registerGetVariants(app, deps);
  registerLocalStorage(app, deps);
  registerStorageEventsWebhook(app, deps);
  return app;
}
