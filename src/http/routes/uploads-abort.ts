import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/uploads/{id}: abandon an upload that has not finished (aborts a multipart upload). */
export function registerAbortUpload(app: App, deps: HttpDeps): void {
  app.delete(
    "/v1/uploads/:id",
    {
      schema: {
        summary: "Abort an upload intent",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: { 204: Type.Null({ description: "Aborted" }), "4xx": ProblemSchema },
      },
    },
    async (request, reply) => {
      await deps.completion.abort(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
