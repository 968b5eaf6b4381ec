import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ADMIN_ERRORS, OwnerParams, toUsageJson, UsageSchema } from "./quota-schemas.ts";

/** GET /v1/admin/owners/{ownerId}/quota: an owner's usage and the limits that apply. */
export function registerGetOwnerQuota(app: App, deps: Pick<HttpDeps, "quotas">): void {
  app.get(
    "/v1/admin/owners/:ownerId/quota",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "getOwnerQuota",
        tags: ["Admin"],
        summary: "Get an owner's usage and quota (admin scope)",
        description:
          "The same view as the owner's GET /v1/usage, for any owner: bytes, image count, and the limits " +
          "that apply (their override, or the defaults).",
        security: BearerSecurity,
        params: OwnerParams,
        response: { 200: ref(UsageSchema, { description: "The owner's usage" }), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { ownerId } = request.params;
      return toUsageJson(ownerId, await deps.quotas.view(ownerId));
    },
  );
}
