import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ImageViewSchema, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** GET /v1/images/{id}: the owner's view of one image. */
export function registerGetImage(app: App, deps: HttpDeps): void {
  app.get(
    "/v1/images/:id",
    {
      schema: {
        summary: "Get an image's metadata",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: { 200: ImageViewSchema, "4xx": ProblemSchema },
      },
    },
    async (request) => toImageView(await deps.images.get(principalOf(request), request.params.id), deps.urls),
  );
}
