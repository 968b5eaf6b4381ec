import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/admin/keys/{id}: revoke an API key. */
export function registerRevokeApiKey(app: App, deps: Pick<HttpDeps, "auth">): void {
  app.delete(
    "/v1/admin/keys/:id",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "revokeApiKey",
        tags: ["Admin"],
        summary: "Revoke an API key (admin scope)",
        description: "Refused at once by this instance; other instances stop accepting it within 30 s.",
        security: BearerSecurity,
        params: Type.Object({ id: Type.String({ pattern: "^key_[0-9a-f]{16}$", description: "key_…" }) }),
        response: {
          204: Type.Null({ description: "Revoked" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          404: problem("No such active key"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      await deps.auth.revokeKey(request.params.id);
      return reply.code(204).send(null);
    },
  );
}
