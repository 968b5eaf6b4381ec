import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ApiKeyListSchema, OwnerIdSchema, toApiKeyView } from "./admin-keys-schemas.ts";

/** GET /v1/admin/keys: active API keys (never the keys themselves), newest first. */
export function registerListApiKeys(app: App, deps: Pick<HttpDeps, "auth">): void {
  app.get(
    "/v1/admin/keys",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "listApiKeys",
        tags: ["Admin"],
        summary: "List active API keys (admin scope)",
        description: "Newest first; never the secrets. Unknown query parameters are ignored.",
        security: BearerSecurity,
        querystring: Type.Object({
          owner: Type.Optional({ ...OwnerIdSchema, description: "only this owner's keys" }),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
        response: {
          200: ref(ApiKeyListSchema, { description: "The keys" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          "4xx": problem("The request is not valid"),
        },
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
