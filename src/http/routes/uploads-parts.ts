import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ProblemSchema, SignedPart } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** GET /v1/uploads/{id}/parts: the parts the storage has (resume) and URLs for the next missing ones. */
export function registerUploadParts(app: App, deps: HttpDeps): void {
  app.get(
    "/v1/uploads/:id/parts",
    {
      schema: {
        summary: "List uploaded parts of a multipart upload and sign the missing ones",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          200: Type.Object({
            uploadId: Type.String(),
            partSize: Type.Integer(),
            partCount: Type.Integer(),
            uploaded: Type.Array(
              Type.Object({ partNumber: Type.Integer(), etag: Type.String(), size: Type.Integer() }),
            ),
            pending: Type.Array(SignedPart),
            expiresAt: Type.String({ format: "date-time" }),
          }),
          "4xx": ProblemSchema,
        },
      },
    },
    async (request) => deps.completion.parts(principalOf(request), request.params.id),
  );
}
