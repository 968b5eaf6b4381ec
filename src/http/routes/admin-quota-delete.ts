import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ADMIN_ERRORS, OwnerParams } from "./quota-schemas.ts";

/** DELETE /v1/admin/owners/{ownerId}/quota: back to the deployment's defaults. */
export function registerDeleteOwnerQuota(app: App, deps: Pick<HttpDeps, "quotas">): void {
  app.delete(
    "/v1/admin/owners/:ownerId/quota",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "deleteOwnerQuota",
        tags: ["Admin"],
        summary: "Remove an owner's quota override (admin scope)",
        description:
          "The owner is back under the defaults. Removing an override that does not exist is no error.",
        security: BearerSecurity,
        params: OwnerParams,
        response: { 204: Type.Null({ description: "The defaults apply" }), ...ADMIN_ERRORS },
      },
    },
    async (request, reply) => {
      await deps.quotas.deleteOverride(request.params.ownerId);
      return reply.code(204).send(null);
    },
  );
}
