import type { App, HttpDeps } from "../types.ts";

/** GET /metrics: Prometheus text format. */
export function registerMetrics(app: App, deps: HttpDeps): void {
  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics (text exposition format)",
        response: {
          200: {
            description: "Every imgup_* metric and the process defaults",
            content: { "text/plain": { schema: { type: "string" } } },
          },
        },
      },
    },
    async (_request, reply) => {
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
