import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { authenticate, principalOf } from "../plugins/auth.ts";
import { ImageViewSchema, ProblemSchema, SignedPart } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const Body = Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 1024 }),
    contentType: Type.String({ minLength: 1, maxLength: 255 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.Optional(Type.String({ minLength: 64, maxLength: 64 })),
    visibility: Type.Optional(Type.Union([Type.Literal("public"), Type.Literal("private")])),
    method: Type.Optional(Type.Union([Type.Literal("put"), Type.Literal("post"), Type.Literal("multipart")])),
  },
  { additionalProperties: false },
);

const Upload = Type.Union([
  Type.Object({
    method: Type.Literal("put"),
    url: Type.String(),
    headers: Type.Record(Type.String(), Type.String()),
    expiresAt: Type.String({ format: "date-time" }),
  }),
  Type.Object({
    method: Type.Literal("post"),
    url: Type.String(),
    fields: Type.Record(Type.String(), Type.String()),
    expiresAt: Type.String({ format: "date-time" }),
  }),
  Type.Object({
    method: Type.Literal("multipart"),
    uploadId: Type.String(),
    partSize: Type.Integer(),
    partCount: Type.Integer(),
    parts: Type.Array(SignedPart),
    expiresAt: Type.String({ format: "date-time" }),
  }),
]);

/** POST /v1/uploads: create an upload intent and hand out a presigned upload. */
export function registerCreateUpload(app: App, deps: HttpDeps): void {
  app.post(
    "/v1/uploads",
    {
      preHandler: authenticate(deps.auth),
      schema: {
        summary: "Create an upload intent",
        body: Body,
        response: {
          201: Type.Object({ image: ImageViewSchema, upload: Upload }),
          "4xx": ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      const result = await deps.uploads.createIntent(principalOf(request), request.body);
      reply.code(201).header("Location", `/v1/images/${result.image.id}`);
      return { image: toImageView(result.image, deps.urls), upload: result.upload };
    },
  );
}
