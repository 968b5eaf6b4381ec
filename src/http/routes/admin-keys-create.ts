import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, addSharedSchemas, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { API_KEY_SCHEMAS, CreateApiKeyRequestSchema, CreatedApiKeySchema } from "./admin-keys-schemas.ts";

/** POST /v1/admin/keys: create an API key for an owner (admin scope); the key is shown once. */
export function registerCreateApiKey(app: App, deps: Pick<HttpDeps, "auth">): void {
  // The create route is registered first of the three key routes: it brings their shared schemas.
  addSharedSchemas(app, API_KEY_SCHEMAS);
  app.post(
    "/v1/admin/keys",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "createApiKey",
        tags: ["Admin"],
        summary: "Create an API key (admin scope)",
        description:
          "The key is in the answer only: keep it. `imgup keys create` does the same from the shell.",
        security: BearerSecurity,
        body: ref(CreateApiKeyRequestSchema),
        response: {
          201: ref(CreatedApiKeySchema, { description: "Created; the secret is shown this once" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { ownerId, name, scopes } = request.body;
      const { id, key } = await deps.auth.createKey({
        ownerId,
        ...(name ? { name } : {}),
        scopes: scopes ?? [],
      });
      return reply.code(201).header("Cache-Control", "no-store").send({ id, ownerId, key });
    },
  );
}
