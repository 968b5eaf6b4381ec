import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ImageViewSchema, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** PATCH /v1/images/{id}: change visibility. */
export function registerPatchImage(app: App, deps: HttpDeps): void {
  app.patch(
    "/v1/images/:id",
    {
      schema: {
        summary: "Change an image's visibility",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: Type.Object(
          { visibility: Type.Union([Type.Literal("public"), Type.Literal("private")]) },
          { additionalProperties: false },
        ),
        response: { 200: ImageViewSchema, "4xx": ProblemSchema },
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
