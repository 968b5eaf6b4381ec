import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ModerationResultSchema, RejectBodySchema, toModerationResult } from "./moderation-schemas.ts";
import { ADMIN_ERRORS } from "./quota-schemas.ts";

/** POST /v1/admin/images/{id}/reject: a held image is rejected (moderation) and its bytes deleted. */
export function registerRejectImage(app: App, deps: Pick<HttpDeps, "moderation">): void {
  app.post(
    "/v1/admin/images/:id/reject",
    {
      preHandler: requireAdmin,
      // A rejection without a reason needs no body at all.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: "rejectHeldImage",
        tags: ["Admin"],
        summary: "Reject a held image (admin scope)",
        description:
          "held -> rejected with rejectReason moderation and the given reason as rejectDetail; the " +
          "original, its public copy and variants are deleted and image.rejected is sent.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: RejectBodySchema,
        response: {
          200: ref(ModerationResultSchema, { description: "The image, now rejected" }),
          ...ADMIN_ERRORS,
          404: problem("No such image"),
          409: problem("The image is not held (e.g. ready, still processing)"),
        },
      },
    },
    async (request) =>
      toModerationResult(await deps.moderation.reject(request.params.id, request.body.reason)),
  );
}
