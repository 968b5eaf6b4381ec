import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, ImageId, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/images/{id}: gone from delivery at once; its objects are removed by a job. */
export function registerDeleteImage(app: App, deps: HttpDeps): void {
  app.delete(
    "/v1/images/:id",
    {
      schema: {
        operationId: "deleteImage",
        tags: ["Images"],
        summary: "Delete an image and all its objects",
        description:
          "Delivery answers 404 at once; the original and its variants are removed from the storage by a " +
          "background job. A deduplicated upload shares the id: this deletes it for everyone holding it.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          204: Type.Null({ description: "Deleted" }),
          ...AUTH_ERRORS,
          404: problem("No such image (or not yours, or already deleted)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      await deps.images.delete(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
