import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, ImageId, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** DELETE /v1/uploads/{id}: abandon an upload that has not finished (aborts a multipart upload). */
export function registerAbortUpload(app: App, deps: HttpDeps): void {
  app.delete(
    "/v1/uploads/:id",
    {
      schema: {
        operationId: "abortUpload",
        tags: ["Uploads"],
        summary: "Abort an upload intent",
        description:
          "Abandons a pending upload (and its multipart upload). Once the bytes arrived, delete the image instead.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          204: Type.Null({ description: "Aborted" }),
          ...AUTH_ERRORS,
          404: problem("No such upload"),
          409: problem("The upload is no longer pending: delete the image instead"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      await deps.completion.abort(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
