import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import {
  AUTH_ERRORS,
  addSharedSchemas,
  BearerSecurity,
  ImageId,
  ImageSchema,
  problem,
  ref,
  VisibilitySchema,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const ImageUpdateSchema = Type.Object(
  { visibility: ref(VisibilitySchema) },
  { $id: "ImageUpdate", additionalProperties: false, description: "What may change about an image" },
);

/** PATCH /v1/images/{id}: change visibility. */
export function registerPatchImage(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, [ImageUpdateSchema]);
  app.patch(
    "/v1/images/:id",
    {
      schema: {
        operationId: "updateImage",
        tags: ["Images"],
        summary: "Change an image's visibility",
        description:
          "Public images get plain delivery URLs; private ones signed, expiring URLs. Cached copies of a " +
          "formerly public image may outlive the change in CDNs.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: ref(ImageUpdateSchema),
        response: {
          200: ref(ImageSchema, { description: "The image, changed" }),
          ...AUTH_ERRORS,
          404: problem("No such image (or not yours)"),
          409: problem("The image can no longer be changed (rejected or expired)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => {
      const image = await deps.images.setVisibility(
        principalOf(request),
        request.params.id,
        request.body.visibility,
      );
      return toImageView(image, deps.urls);
    },
  );
}
