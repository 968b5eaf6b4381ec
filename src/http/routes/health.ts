import { Type } from "typebox";
import { isDegraded } from "../../services/readiness.ts";
import { opsAccess } from "../plugins/ops-token.ts";
import { addSharedSchemas, MALFORMED, NoSecurity, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const ReadinessSchema = Type.Object(
  {
    status: Type.Unsafe<"ok" | "degraded" | "unavailable">({
      type: "string",
      enum: ["ok", "degraded", "unavailable"],
    }),
    checks: Type.Record(Type.String(), Type.String(), {
      description:
        'per check: "ok", "degraded: …" or why it failed (only "degraded" or "failed" without IMGUP_OPS_TOKEN outside embedded mode). database, kv, storage in every role; workers and storageEvents (degraded at worst) on the API; runLoop on a worker',
    }),
    failed: Type.Array(Type.String(), { description: "the dependencies that failed their check" }),
  },
  { $id: "Readiness", description: "Whether this instance can serve, per dependency" },
);

/** What the probes need: on the API port and on the admin port (http/admin-server.ts) alike. */
export type HealthDeps = Pick<HttpDeps, "config" | "readiness">;

/** GET /healthz (the process is alive) and GET /readyz (its dependencies answer). */
export function registerHealth(app: App, deps: HealthDeps): void {
  const access = opsAccess(deps.config);
  addSharedSchemas(app, [ReadinessSchema]);
  app.get(
    "/healthz",
    {
      schema: {
        operationId: "getLiveness",
        tags: ["Operations"],
        summary: "Liveness: the process is alive (checks nothing else)",
        description: "For a liveness probe: restart the process when this fails.",
        security: NoSecurity,
        response: {
          200: Type.Object({ status: Type.Literal("ok") }, { description: "Alive" }),
          ...MALFORMED,
        },
      },
    },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/readyz",
    {
      schema: {
        operationId: "getReadiness",
        tags: ["Operations"],
        summary: "Readiness: database, KV and storage answer, each within IMGUP_READY_TIMEOUT_MS",
        description:
          "For a readiness probe or load balancer. Why a check failed is shown to the holder of " +
          "IMGUP_OPS_TOKEN (and in embedded mode); others see only ok, degraded or failed.",
        security: [{}, { opsToken: [] }],
        response: {
          200: ref(ReadinessSchema, {
            description:
              "Ready, or degraded but serving (database breaker open, no worker heartbeat, no storage event while uploads were issued)",
          }),
          503: ref(ReadinessSchema, { description: "A dependency failed; `failed` names it" }),
          ...MALFORMED,
        },
      },
    },
    async (request, reply) => {
      const checks = await deps.readiness();
      // A degraded dependency still serves (e.g. intents buffered while the database is away).
      const failed = Object.entries(checks)
        .filter(([, outcome]) => outcome !== "ok" && !isDegraded(outcome))
        .map(([name]) => name);
      const degraded = Object.values(checks).some(isDegraded);
      const status = failed.length > 0 ? "unavailable" : degraded ? "degraded" : "ok";
      if (failed.length > 0) request.log.warn({ checks }, "not ready");
      const shown = access.readyDetails(request) ? checks : redact(checks);
      return reply.code(failed.length > 0 ? 503 : 200).send({ status, checks: shown, failed });
    },
  );
}

function redact(checks: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(checks).map(([name, outcome]) => [
      name,
      outcome === "ok" ? "ok" : isDegraded(outcome) ? "degraded" : "failed",
    ]),
  );
}
