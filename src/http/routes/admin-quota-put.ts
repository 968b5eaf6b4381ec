import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import {
  ADMIN_ERRORS,
  OwnerParams,
  QuotaOverrideRequestSchema,
  toUsageJson,
  UsageSchema,
} from "./quota-schemas.ts";

/** PUT /v1/admin/owners/{ownerId}/quota: this owner's own limits instead of the defaults. */
export function registerPutOwnerQuota(app: App, deps: Pick<HttpDeps, "quotas">): void {
  app.put(
    "/v1/admin/owners/:ownerId/quota",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "setOwnerQuota",
        tags: ["Admin"],
        summary: "Set an owner's quota (admin scope)",
        description:
          "Overrides IMGUP_QUOTA_BYTES and IMGUP_QUOTA_IMAGES for this owner (null: unlimited). Applies " +
          "to the next intent; what the owner holds already is never deleted by a lower limit.",
        security: BearerSecurity,
        params: OwnerParams,
        body: ref(QuotaOverrideRequestSchema),
        response: {
          200: ref(UsageSchema, { description: "The owner's usage under the new limits" }),
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const { ownerId } = request.params;
      await deps.quotas.setOverride(ownerId, request.body);
      return toUsageJson(ownerId, await deps.quotas.view(ownerId));
    },
  );
}
