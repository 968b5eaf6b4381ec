import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import type { Logger } from "pino";
import { closeHttp } from "./close.ts";
import { registerErrorHandling } from "./plugins/errors.ts";
import { RequestLogController } from "./plugins/observability.ts";
import { type HealthDeps, registerHealth } from "./routes/health.ts";
import { type MetricsDeps, registerMetrics } from "./routes/metrics.ts";
import { addSharedSchemas, CORE_SCHEMAS } from "./schemas.ts";
import type { App } from "./types.ts";

export type AdminDeps = HealthDeps & MetricsDeps;

/**
 * /healthz, /readyz and /metrics alone on IMGUP_ADMIN_PORT: how the worker and the scheduler,
 * which serve no API, are probed and scraped, and how the API's can be kept off its public port.
 * The same routes as on the API port, IMGUP_OPS_TOKEN included.
 */
export async function startAdminServer(
  deps: AdminDeps,
  logger: Logger,
): Promise<{ url: string; close(graceMs: number): Promise<void> }> {
  const port = deps.config.admin.port;
  if (port === undefined) throw new Error("IMGUP_ADMIN_PORT is not set");
  const app: App = Fastify({
    loggerInstance: logger,
    // The API port's one line per request: successful probes and scrapes only at debug (one
    // every few seconds would drown the log), failures at info and above.
    logController: new RequestLogController(),
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }).withTypeProvider<TypeBoxTypeProvider>();
  // The problem responses refer to the core schemas (Problem and what it names).
  addSharedSchemas(app, CORE_SCHEMAS);
  registerErrorHandling(app);
  registerHealth(app, deps);
  registerMetrics(app, deps, "admin");
  const url = await app.listen({ host: deps.config.admin.host, port });
  // The startup banner names it; at info this would be a second start line.
  logger.debug({ url }, `admin endpoint (/healthz, /readyz, /metrics) on ${url}`);
  return { url, close: (graceMs) => closeHttp(app, graceMs) };
}
