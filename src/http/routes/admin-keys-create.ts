import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { OwnerIdSchema } from "./admin-keys-schemas.ts";

/** POST /v1/admin/keys: create an API key for an owner (admin scope); the key is shown once. */
export function registerCreateApiKey(app: App, deps: Pick<HttpDeps, "auth">): void {
  app.post(
    "/v1/admin/keys",
    {
      preHandler: requireAdmin,
      schema: {
        summary: "Create an API key (admin scope)",
        security: BearerSecurity,
        body: Type.Object(
          {
            ownerId: OwnerIdSchema,
            name: Type.Optional(Type.String({ maxLength: 200 })),
            scopes: Type.Optional(Type.Array(Type.Literal("admin"), { maxItems: 1 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ id: Type.String(), ownerId: Type.String(), key: Type.String() }),
          "4xx": ProblemSchema,
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
