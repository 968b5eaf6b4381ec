import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageViewSchema, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** GET /v1/images: the caller's images, newest first, keyset-paginated. */
export function registerListImages(app: App, deps: HttpDeps): void {
  app.get(
    "/v1/images",
    {
      schema: {
        summary: "List the caller's images",
        security: BearerSecurity,
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(ImageViewSchema),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          "4xx": ProblemSchema,
        },
      },
    },
    async (request) => {
      const page = await deps.images.list(principalOf(request), request.query);
      return { items: page.items.map((i) => toImageView(i, deps.urls)), nextCursor: page.nextCursor };
    },
  );
}
