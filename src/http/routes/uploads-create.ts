import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { idempotency } from "../plugins/idempotency.ts";
import { intentRateLimitOptions } from "../plugins/rate-limit.ts";
import {
  AUTH_ERRORS,
  addSharedSchemas,
  BearerSecurity,
  IdempotencyHeaders,
  ImageSchema,
  problem,
  ref,
  SignedPartSchema,
  VisibilitySchema,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const UploadIntentRequestSchema = Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 1024 }),
    contentType: Type.String({
      minLength: 1,
      maxLength: 255,
      description: "the image's type (image/jpeg, image/png, …); processing checks the bytes against it",
    }),
    size: Type.Integer({ minimum: 0, description: "bytes; the upload must send exactly this many" }),
    sha256: Type.Optional(
      Type.String({
        minLength: 64,
        maxLength: 64,
        description: "hex; lets the server skip an upload it already has (deduplication) and check the bytes",
      }),
    ),
    visibility: Type.Optional(ref(VisibilitySchema)),
    method: Type.Optional(
      Type.Unsafe<"put" | "post" | "multipart">({
        type: "string",
        enum: ["put", "post", "multipart"],
        description: "how the bytes will be sent (default put; multipart for large files)",
      }),
    ),
    partSize: Type.Optional(
      Type.Integer({ description: "Multipart only: the size of every part but the last (at least 5 MiB)." }),
    ),
    claim: Type.Optional(
      Type.Boolean({
        description:
          "true: the image is deleted unless claimed (POST /v1/images/{id}/claim) within the claim TTL; " +
          "a profile may require it too",
      }),
    ),
    profile: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: "an upload profile's name: its limits, presets, visibility and claim rule apply",
      }),
    ),
  },
  { $id: "UploadIntentRequest", additionalProperties: false, description: "What is about to be uploaded" },
);

const expiresAt = Type.String({ format: "date-time", description: "when the upload URLs stop working" });

export const PutUploadSchema = Type.Object(
  {
    method: Type.Literal("put"),
    url: Type.String({ description: "PUT the bytes here" }),
    headers: Type.Record(Type.String(), Type.String(), {
      description: "send exactly these headers with the PUT (they are signed)",
    }),
    expiresAt,
  },
  { $id: "PutUpload", description: "One presigned PUT" },
);

export const PostUploadSchema = Type.Object(
  {
    method: Type.Literal("post"),
    url: Type.String({ description: "POST a multipart/form-data form here" }),
    fields: Type.Record(Type.String(), Type.String(), {
      description: "the form fields, in this order, before the file field",
    }),
    expiresAt,
  },
  { $id: "PostUpload", description: "A presigned browser form upload (S3 POST policy)" },
);

export const MultipartUploadSchema = Type.Object(
  {
    method: Type.Literal("multipart"),
    uploadId: Type.String(),
    partSize: Type.Integer(),
    partCount: Type.Integer(),
    parts: Type.Array(ref(SignedPartSchema), {
      description: "URLs for the first parts; GET /v1/uploads/{id}/parts signs the rest",
    }),
    expiresAt,
  },
  { $id: "MultipartUpload", description: "A multipart upload: PUT each part, then complete with the ETags" },
);

export const UploadSchema = Type.Union(
  [ref(PutUploadSchema), ref(PostUploadSchema), ref(MultipartUploadSchema)],
  {
    $id: "Upload",
    description: "How to send the bytes, by method",
  },
);

export const UploadIntentSchema = Type.Object(
  { image: ref(ImageSchema), upload: ref(UploadSchema) },
  { $id: "UploadIntent", description: "The pending image and where to upload its bytes" },
);

export const UploadDeduplicatedSchema = Type.Object(
  {
    image: ref(ImageSchema),
    deduplicated: Type.Boolean({
      description:
        "true: the same bytes (sha256) were already a ready image of yours with this visibility, and this " +
        "is that image (same id: deleting it deletes it for every caller holding the id). false: a " +
        "repeated Idempotency-Key whose image has left pending; nothing to upload",
    }),
  },
  { $id: "UploadDeduplicated", description: "No upload needed" },
);

const SCHEMAS = [
  UploadIntentRequestSchema,
  PutUploadSchema,
  PostUploadSchema,
  MultipartUploadSchema,
  UploadSchema,
  UploadIntentSchema,
  UploadDeduplicatedSchema,
];

/** POST /v1/uploads: create an upload intent and hand out a presigned upload. */
export function registerCreateUpload(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, SCHEMAS);
  // The lock and the owner's rate-limit charge are one KV round trip; replays and in-flight
  // duplicates are answered before they cost a token.
  const idem = idempotency(deps.kv, deps.metrics, {
    rerender: true,
    rateLimit: intentRateLimitOptions(deps),
  });
  app.post(
    "/v1/uploads",
    {
      preHandler: idem.preHandler,
      onSend: idem.onSend,
      schema: {
        operationId: "createUpload",
        tags: ["Uploads"],
        summary: "Create an upload intent",
        description:
          "Declares an upload and answers where to send the bytes: straight to the storage (a presigned " +
          "PUT, a browser form POST, or multipart for large files), not through imgup. The image is " +
          "`pending` until the bytes arrive, then `processing`, then `ready` or `rejected`. With `sha256` " +
          "of bytes you already have as a ready image, nothing is uploaded: 200 with that image. " +
          "Location names the image. Rate-limited per owner (429 with Retry-After).",
        security: BearerSecurity,
        headers: IdempotencyHeaders,
        body: ref(UploadIntentRequestSchema),
        response: {
          201: ref(UploadIntentSchema, { description: "Created: upload the bytes as `upload` says" }),
          200: ref(UploadDeduplicatedSchema, { description: "Nothing to upload: `image` is the answer" }),
          ...AUTH_ERRORS,
          409: problem("The Idempotency-Key is in use by a request that has not finished"),
          413: problem("`size` is over the upload limit (maxBytes says it)"),
          415: problem("`contentType` is not an accepted image type"),
          422: problem("The Idempotency-Key was used with another request body"),
          "4xx": problem("The request is not valid (validation_failed names the field)"),
          503: problem(
            "The metadata database is unreachable and intents cannot be buffered; see Retry-After",
          ),
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
