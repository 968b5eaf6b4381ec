import type { App, HttpDeps } from "../types.ts";

/** GET /metrics: Prometheus text format. */
export function registerMetrics(app: App, deps: HttpDeps): void {
  app.get("/metrics", async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
