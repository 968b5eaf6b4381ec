import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ApiKeySchema, OwnerIdSchema, toApiKeyView } from "./admin-keys-schemas.ts";

/** GET /v1/admin/keys: active API keys (never the keys themselves), newest first. */
export function registerListApiKeys(app: App, deps: Pick<HttpDeps, "auth">): void {
  app.get(
    "/v1/admin/keys",
    {
      preHandler: requireAdmin,
      schema: {
        summary: "List active API keys (admin scope)",
        security: BearerSecurity,
        querystring: Type.Object({
          owner: Type.Optional(OwnerIdSchema),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(ApiKeySchema) }), "4xx": ProblemSchema },
      },
    },
    async (request) => {
      const { owner, limit } = request.query;
      const keys = await deps.auth.listKeys({
        ...(owner ? { ownerId: owner } : {}),
        ...(limit ? { limit } : {}),
      });
      return { items: keys.map(toApiKeyView) };
    },
  );
}
