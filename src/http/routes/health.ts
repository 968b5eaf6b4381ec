import { Type } from "typebox";
import type { App, HttpDeps } from "../types.ts";

/** GET /healthz (the process is alive) and GET /readyz (its dependencies answer). */
export function registerHealth(app: App, deps: HttpDeps): void {
  app.get(
    "/healthz",
    { schema: { summary: "Liveness", response: { 200: Type.Object({ status: Type.Literal("ok") }) } } },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/readyz",
    {
      schema: {
        summary: "Readiness: database, storage (and KV) reachable",
        response: {
          "2xx": Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
          503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) }),
        },
      },
    },
    async (_request, reply) => {
      const checks = await deps.readiness();
      const values = Object.values(checks);
      // A degraded dependency still serves (e.g. intents buffered while the database is away).
      const ok = values.every((v) => v === "ok" || v.startsWith("degraded"));
      const status = !ok ? "unavailable" : values.every((v) => v === "ok") ? "ok" : "degraded";
      return reply.code(ok ? 200 : 503).send({ status, checks });
    },
  );
}
