import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/admin/keys/{id}: revoke an API key. */
export function registerRevokeApiKey(app: App, deps: Pick<HttpDeps, "auth">): void {
  app.delete(
    "/v1/admin/keys/:id",
    {
      preHandler: requireAdmin,
      schema: {
        summary: "Revoke an API key (admin scope)",
        description: "Refused at once by this instance; other instances stop accepting it within 30 s.",
        security: BearerSecurity,
        params: Type.Object({ id: Type.String({ pattern: "^key_[0-9a-f]{16}$" }) }),
        response: { 204: Type.Null({ description: "Revoked" }), "4xx": ProblemSchema },
      },
    },
    async (request, reply) => {
      await deps.auth.revokeKey(request.params.id);
      return reply.code(204).send(null);
    },
  );
}
