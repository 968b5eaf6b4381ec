import { Type } from "typebox";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const ImageId = Type.String({ minLength: 1, maxLength: 64, description: "image id (UUIDv7)" });

export const ImageViewSchema = Type.Object({
  id: Type.String(),
  status: Type.String({ enum: ["pending", "processing", "ready", "rejected", "expired", "deleted"] }),
  visibility: Type.String({ enum: ["public", "private"] }),
  filename: Type.String(),
  contentType: Nullable(Type.String()),
  size: Nullable(Type.Integer()),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  format: Nullable(Type.String()),
  sha256: Nullable(Type.String()),
  placeholder: Nullable(Type.String({ description: "ThumbHash, base64" })),
  rejectReason: Nullable(Type.String()),
  rejectDetail: Nullable(Type.String()),
  createdAt: Type.String({ format: "date-time" }),
  readyAt: Nullable(Type.String({ format: "date-time" })),
  urls: Nullable(
    Type.Object({
      original: Type.String({
        description: "what anyone may fetch (public: without EXIF/GPS/XMP; private: signed, expiring)",
      }),
      source: Type.String({ description: "the untouched upload, metadata included: signed, expiring" }),
      presets: Type.Record(Type.String(), Type.String()),
    }),
  ),
});

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
  },
  { additionalProperties: true },
);

export const BearerSecurity = [{ bearer: [] }];

export const SignedPart = Type.Object({ partNumber: Type.Integer(), url: Type.String() });

/**
 * A streamed (binary) response or request body for the OpenAPI document. Fastify never serializes or
 * validates a stream: keyed by a media range (`image/*`), a body schema is matched against no
 * request's exact media type, so it documents without validating.
 */
export const binaryContent = (description: string, mediaRange: string) => ({
  description,
  content: { [mediaRange]: { schema: { type: "string", format: "binary" } } },
});

/** No body at all (typed `undefined`, so a handler answers `reply.code(304).send()`). */
export const NotModified = Type.Unsafe<undefined>({
  type: "null",
  description: "Not modified: If-None-Match matched the ETag",
});

/** Optional `Idempotency-Key` (quoted or bare, 1–255 printable characters; checked by the plugin). */
export const IdempotencyHeaders = Type.Object({
  "idempotency-key": Type.Optional(
    Type.String({ description: "repeat with the same request to get the stored answer, kept 24 h" }),
  ),
});
