import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, ImageId, ImageSchema, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** GET /v1/images/{id}: the owner's view of one image. */
export function registerGetImage(app: App, deps: HttpDeps): void {
  app.get(
    "/v1/images/:id",
    {
      schema: {
        operationId: "getImage",
        tags: ["Images"],
        summary: "Get an image's metadata",
        description:
          "Status, dimensions and, once ready, delivery URLs (private images: signed, expiring). Poll " +
          "this after an upload until the status is ready or rejected.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          200: ref(ImageSchema, { description: "The image" }),
          ...AUTH_ERRORS,
          404: problem("No such image (or not yours)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => toImageView(await deps.images.get(principalOf(request), request.params.id), deps.urls),
  );
}
