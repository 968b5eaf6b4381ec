import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import {
  AUTH_ERRORS,
  addSharedSchemas,
  BearerSecurity,
  ImageId,
  problem,
  ref,
  SignedPartSchema,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const UploadPartsSchema = Type.Object(
  {
    uploadId: Type.String(),
    partSize: Type.Integer(),
    partCount: Type.Integer(),
    uploaded: Type.Array(
      Type.Object({ partNumber: Type.Integer(), etag: Type.String(), size: Type.Integer() }),
      { description: "the parts the storage has" },
    ),
    pending: Type.Array(ref(SignedPartSchema), { description: "URLs for the next missing parts" }),
    expiresAt: Type.String({ format: "date-time", description: "when the pending URLs stop working" }),
  },
  { $id: "UploadParts", description: "Where a multipart upload stands, and how to go on" },
);

/** GET /v1/uploads/{id}/parts: the parts the storage has (resume) and URLs for the next missing ones. */
export function registerUploadParts(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, [UploadPartsSchema]);
  app.get(
    "/v1/uploads/:id/parts",
    {
      schema: {
        operationId: "listUploadParts",
        tags: ["Uploads"],
        summary: "List uploaded parts of a multipart upload and sign the missing ones",
        description:
          "Resumes a multipart upload: which parts the storage already has (with their ETags), and fresh " +
          "URLs for the next missing ones. Call again for more URLs.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        response: {
          200: ref(UploadPartsSchema, { description: "The parts, and URLs for the next missing ones" }),
          ...AUTH_ERRORS,
          404: problem("No such upload"),
          409: problem("Not a multipart upload, or no longer pending"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => deps.completion.parts(principalOf(request), request.params.id),
  );
}
