import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { addSharedSchemas, BearerSecurity, ImageId, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ModerationResultSchema, toModerationResult } from "./moderation-schemas.ts";
import { ADMIN_ERRORS } from "./quota-schemas.ts";

/** POST /v1/admin/images/{id}/approve: a held image turns ready (served to everyone its visibility allows). */
export function registerApproveImage(app: App, deps: Pick<HttpDeps, "moderation">): void {
  addSharedSchemas(app, [ModerationResultSchema]);
  app.post(
    "/v1/admin/images/:id/approve",
    {
      preHandler: requireAdmin,
      // No body is needed at all.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: "approveImage",
        tags: ["Admin"],
        summary: "Approve a held image (admin scope)",
        description:
          "held -> ready: image.ready is sent and delivery serves it. Approving an image that is already " +
          "ready answers it as it is.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: Type.Object({}, { additionalProperties: false, description: "nothing (or {})" }),
        response: {
          200: ref(ModerationResultSchema, { description: "The image, now ready" }),
          ...ADMIN_ERRORS,
          404: problem("No such image"),
          409: problem("The image is not held (e.g. rejected, still processing)"),
        },
      },
    },
    async (request) => toModerationResult(await deps.moderation.approve(request.params.id)),
  );
}
