import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify from "fastify";
import type { Logger } from "pino";
import { closeHttp } from "./close.ts";
import { registerErrorHandling } from "./plugins/errors.ts";
import { type HealthDeps, registerHealth } from "./routes/health.ts";
import { type MetricsDeps, registerMetrics } from "./routes/metrics.ts";
import { addSharedSchemas, ProblemSchema } from "./schemas.ts";
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
    // A probe every few seconds and a scrape every 15 s would drown the log; a failed
    // readiness check logs itself ("not ready").
    disableRequestLogging: true,
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }).withTypeProvider<TypeBoxTypeProvider>();
  addSharedSchemas(app, [ProblemSchema]);
  registerErrorHandling(app);
  registerHealth(app, deps);
  registerMetrics(app, deps);
  const url = await app.listen({ host: deps.config.admin.host, port });
  logger.info({ url, role: deps.config.role }, `admin endpoint (/healthz, /readyz, /metrics) on ${url}`);
  return { url, close: (graceMs) => closeHttp(app, graceMs) };
}
