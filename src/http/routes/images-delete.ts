import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/images/{id}: gone from delivery at once; its objects are removed by a job. */
export function registerDeleteImage(app: App, deps: HttpDeps): void {
  app.delete(
    "/v1/images/:id",
    {
      schema: {
        summary: "Delete an image and all its objects",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: { 204: Type.Null({ description: "Deleted" }), "4xx": ProblemSchema },
      },
    },
    async (request, reply) => {
      await deps.images.delete(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
