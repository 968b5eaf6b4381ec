import { ERRORS } from "../../domain/errors.ts";
import { opsAccess } from "../plugins/ops-token.ts";
import { MALFORMED, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** What /metrics needs: on the API port and on the admin port (http/admin-server.ts) alike. */
export type MetricsDeps = Pick<HttpDeps, "config" | "metrics">;

/** GET /metrics: Prometheus text format. */
export function registerMetrics(app: App, deps: MetricsDeps): void {
  const access = opsAccess(deps.config);
  app.get(
    "/metrics",
    {
      schema: {
        operationId: "getMetrics",
        tags: ["Operations"],
        summary: "Prometheus metrics (text exposition format)",
        description: "Open to all unless IMGUP_OPS_TOKEN is set; then it needs that token as a bearer token.",
        security: [{ opsToken: [] }, {}],
        response: {
          200: {
            description: "Every imgup_* metric and the process defaults",
            content: { "text/plain": { schema: { type: "string" } } },
          },
          401: problem("IMGUP_OPS_TOKEN is set and was not sent"),
          ...MALFORMED,
        },
      },
    },
    async (request, reply) => {
      if (!access.metrics(request)) {
        throw ERRORS.unauthenticated("send Authorization: Bearer <IMGUP_OPS_TOKEN>", {
          headers: { "WWW-Authenticate": 'Bearer realm="imgup-ops"' },
        });
      }
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
