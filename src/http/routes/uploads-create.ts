import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { idempotency, unlessReplayed } from "../plugins/idempotency.ts";
import { intentRateLimit } from "../plugins/rate-limit.ts";
import {
  BearerSecurity,
  IdempotencyHeaders,
  ImageViewSchema,
  ProblemSchema,
  SignedPart,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const Body = Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 1024 }),
    contentType: Type.String({ minLength: 1, maxLength: 255 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.Optional(Type.String({ minLength: 64, maxLength: 64 })),
    visibility: Type.Optional(Type.Union([Type.Literal("public"), Type.Literal("private")])),
    method: Type.Optional(Type.Union([Type.Literal("put"), Type.Literal("post"), Type.Literal("multipart")])),
    partSize: Type.Optional(
      Type.Integer({ description: "Multipart only: the size of every part but the last (at least 5 MiB)." }),
    ),
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
  const idem = idempotency(deps.kv, deps.metrics, { rerender: true });
  app.post(
    "/v1/uploads",
    {
      // Replays and in-flight duplicates are answered before they cost a rate-limit token.
      preHandler: [idem.preHandler, unlessReplayed(intentRateLimit(deps))],
      onSend: idem.onSend,
      schema: {
        summary: "Create an upload intent",
        security: BearerSecurity,
        headers: IdempotencyHeaders,
        body: Body,
        response: {
          201: Type.Object({ image: ImageViewSchema, upload: Upload }),
          200: Type.Object({ image: ImageViewSchema, deduplicated: Type.Boolean() }),
          "4xx": ProblemSchema,
          503: ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      const key = request.idempotency;
      const result = key?.replay
        ? await deps.uploads.replay(principalOf(request), key.replay.imageId, key.key)
        : await deps.uploads.createIntent(principalOf(request), request.body, key?.key);
      const image = toImageView(result.image, deps.urls);
      reply.header("Location", `/v1/images/${result.image.id}`);
      if (result.kind === "existing") reply.header("Idempotent-Replayed", "true");
      if (result.kind === "deduplicated") return reply.code(200).send({ image, deduplicated: true });
      if (result.upload === null) return reply.code(200).send({ image, deduplicated: false });
      return reply.code(201).send({ image, upload: result.upload });
    },
  );
}
