import { ERRORS } from "../../domain/errors.ts";
import { type OpsPort, opsAccess } from "../plugins/ops-token.ts";
import { MALFORMED, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** What /metrics needs: on the API port and on the admin port (http/admin-server.ts) alike. */
export type MetricsDeps = Pick<HttpDeps, "config" | "metrics">;

/** GET /metrics: Prometheus text format. */
export function registerMetrics(app: App, deps: MetricsDeps, port: OpsPort = "api"): void {
  const access = opsAccess(deps.config, port);
  app.get(
    "/metrics",
    {
      schema: {
        operationId: "getMetrics",
        tags: ["Operations"],
        summary: "Prometheus metrics (text exposition format)",
        description:
          "With IMGUP_OPS_TOKEN set, it needs that token as a bearer token. Without one it is open in " +
          "embedded mode and on IMGUP_ADMIN_PORT, and refused on the API port when DATABASE_URL is set.",
        security: [{ opsToken: [] }, {}],
        response: {
          200: {
            description: "Every imgup_* metric and the process defaults",
            content: { "text/plain": { schema: { type: "string" } } },
          },
          401: problem("IMGUP_OPS_TOKEN was not sent, or the API port of a DATABASE_URL setup has none"),
          ...MALFORMED,
        },
      },
    },
    async (request, reply) => {
      if (!access.metrics(request)) {
        throw ERRORS.unauthenticated(access.metricsRefusal, {
          headers: { "WWW-Authenticate": 'Bearer realm="imgup-ops"' },
        });
      }
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
