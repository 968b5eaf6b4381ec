import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { requireAdmin } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ImageSchema, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ADMIN_ERRORS } from "./quota-schemas.ts";

/**
 * GET /v1/admin/images/{id}: any owner's image as its owner sees it, for an admin deciding on a held
 * image: its urls are signed (a held image is served to nobody else), so the admin can look at it.
 */
export function registerAdminGetImage(app: App, deps: Pick<HttpDeps, "moderation" | "urls">): void {
  app.get(
    "/v1/admin/images/:id",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "adminGetImage",
        tags: ["Admin"],
        summary: "Get any owner's image (admin scope)",
        description:
          "The image view its owner gets, whoever the owner is: for a held image, signed URLs to the " +
          "original and presets, to review it before approving or rejecting it.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          200: ref(ImageSchema, { description: "The image" }),
          ...ADMIN_ERRORS,
          404: problem("No such image"),
        },
      },
    },
    async (request) => toImageView(await deps.moderation.current(request.params.id), deps.urls),
  );
}
