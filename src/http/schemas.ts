import { type Static, type TSchema, Type } from "typebox";
import { IMAGE_STATUSES, type ImageStatus, REJECT_REASONS, type RejectReason } from "../domain/image.ts";
import type { App } from "./types.ts";

/**
 * The API's shared schemas. Each has an `$id`: `addSharedSchemas` adds them to Fastify (which
 * validates and serializes through them) and @fastify/swagger lists them under their `$id` in
 * `components/schemas`, so generated clients get named types (`Image`, `Problem`) instead of one
 * inlined copy per operation. Routes point at them with `ref(...)`; a schema used by one route
 * file is defined and added there, one used by several is here (CORE_SCHEMAS, added by openapi.ts).
 */

/** `{$ref}` to a shared schema, typed as the schema itself (the type provider infers through it). */
export const ref = <T extends TSchema>(schema: T, extra: { description?: string } = {}) =>
  Type.Unsafe<Static<T>>({ $ref: `${sharedId(schema)}#`, ...extra });

export function sharedId(schema: TSchema): string {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== "string") throw new Error("a shared schema needs an $id");
  return id;
}

const INLINE_NULLABLE = new Set(["string", "integer", "number", "boolean", "object"]);

/**
 * `type: [t, "null"]` (JSON Schema 2020-12, OpenAPI 3.1) where the schema has a type of its own:
 * fast-json-stringify writes that directly, where an `anyOf` costs a validation per branch (and a
 * `$ref` lookup) on every response.
 */
const Nullable = <T extends TSchema>(t: T, description?: string) => {
  const type = (t as { type?: unknown }).type;
  if (typeof type === "string" && INLINE_NULLABLE.has(type)) {
    // String keys only: TypeBox's Kind symbol would still say the value cannot be null.
    const plain = Object.fromEntries(Object.entries(t));
    return Type.Unsafe<Static<T> | null>({
      ...plain,
      type: [type, "null"],
      ...(description ? { description } : {}),
    });
  }
  return Type.Union([t, Type.Null()], description ? { description } : {});
};

const stringEnum = <T extends string>(values: readonly T[], opts: { $id?: string; description: string }) =>
  Type.Unsafe<T>({ ...opts, type: "string", enum: [...values] });

export const ImageStatusSchema = stringEnum<ImageStatus>(IMAGE_STATUSES, {
  $id: "ImageStatus",
  description:
    "pending: waiting for the bytes; processing: bytes arrived, being checked; ready: served; rejected: " +
    "not an acceptable image (see rejectReason); expired: never uploaded within the upload window; deleted; " +
    "held: valid, awaiting a moderation decision (served to its owner's signed URLs only)",
});

export const RejectReasonSchema = stringEnum<RejectReason>(REJECT_REASONS, {
  $id: "RejectReason",
  description: "Why processing refused the upload (stable codes; rejectDetail says more in words)",
});

export const VisibilitySchema = stringEnum<"public" | "private">(["public", "private"], {
  $id: "Visibility",
  description: "public: plain delivery URLs anyone may fetch; private: signed, expiring URLs only",
});

export const ImageId = Type.String({ minLength: 1, maxLength: 64, description: "image id (UUIDv7)" });

const EXAMPLE_ID = "01936f6e-8a3c-7b1e-9d4f-2a6b8c0e1f23";
const EXAMPLE_URL = `https://imgup.example/i/${EXAMPLE_ID}`;

export const ImageSchema = Type.Object(
  {
    id: Type.String({ description: "UUIDv7: sorts by creation time" }),
    status: ref(ImageStatusSchema),
    visibility: ref(VisibilitySchema),
    filename: Type.String({ description: "as uploaded, sanitised; used for Content-Disposition" }),
    contentType: Nullable(
      Type.String(),
      "Before processing ends (pending, processing, expired): the type the upload declared (null if it " +
        "declared none). Once ready: the type the bytes were validated as.",
    ),
    size: Nullable(
      Type.Integer({ minimum: 0 }),
      "Bytes. Before processing ends: the size the upload declared (null if unknown, e.g. a chunked " +
        "proxy upload). Once ready: the stored size.",
    ),
    width: Nullable(Type.Integer({ minimum: 1 }), "pixels, once ready"),
    height: Nullable(Type.Integer({ minimum: 1 }), "pixels, once ready"),
    format: Nullable(Type.String(), "decoded format (jpeg, png, webp, gif, avif, heif…), once ready"),
    sha256: Nullable(Type.String(), "SHA-256 of the bytes, hex, once known"),
    placeholder: Nullable(Type.String(), "ThumbHash, base64: a blurred preview before the thumbnail loads"),
    rejectReason: Nullable(ref(RejectReasonSchema), "set when status is rejected"),
    rejectDetail: Nullable(Type.String(), "what was wrong, in words (rejected only)"),
    createdAt: Type.String({ format: "date-time" }),
    readyAt: Nullable(Type.String({ format: "date-time" })),
    claimRequired: Type.Boolean({
      description: "true: deleted at claimExpiresAt unless claimed (POST /v1/images/{id}/claim) by then",
    }),
    claimed: Type.Boolean({ description: "claimed by the app (whether or not a claim was required)" }),
    claimExpiresAt: Nullable(
      Type.String({ format: "date-time" }),
      "when an unclaimed image that requires a claim is deleted; null once claimed or when none is required",
    ),
    ref: Nullable(Type.String(), "the app's reference given with the claim (e.g. users/42/avatar)"),
    profile: Nullable(Type.String(), "the upload profile the intent named"),
    urls: Nullable(
      Type.Object({
        original: Type.String({
          description: "what anyone may fetch (public: without EXIF/GPS/XMP; private: signed, expiring)",
        }),
        source: Type.String({ description: "the untouched upload, metadata included: signed, expiring" }),
        presets: Type.Record(Type.String(), Type.String(), {
          description: "one delivery URL per configured preset (thumb, medium, …)",
        }),
      }),
      "delivery URLs, only when status is ready",
    ),
  },
  {
    $id: "Image",
    description: "An image as its owner sees it",
    examples: [
      {
        id: EXAMPLE_ID,
        status: "ready",
        visibility: "public",
        filename: "beach.jpg",
        contentType: "image/jpeg",
        size: 2481152,
        width: 4032,
        height: 3024,
        format: "jpeg",
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        placeholder: "1QcSHQRnh493V4dIh4eXh1h4kJUI",
        rejectReason: null,
        rejectDetail: null,
        createdAt: "2026-01-05T10:00:00.000Z",
        readyAt: "2026-01-05T10:00:02.000Z",
        claimRequired: true,
        claimed: true,
        claimExpiresAt: null,
        ref: "users/42/avatar",
        profile: "avatar",
        urls: {
          original: `${EXAMPLE_URL}/original`,
          source: `${EXAMPLE_URL}/original?exp=1767610800&sig=2c1f9e6a0b7d4e3f`,
          presets: { thumb: `${EXAMPLE_URL}/thumb`, medium: `${EXAMPLE_URL}/medium` },
        },
      },
    ],
  },
);

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: "uri", description: "https://imgup.dev/problems/<code>" }),
    title: Type.String({ description: "the same for every problem with this code" }),
    status: Type.Integer({ description: "the HTTP status" }),
    detail: Type.String({ description: "what went wrong with this request, in words" }),
    code: Type.String({
      description:
        "Stable, machine-readable: branch on this, not on the text (validation_failed, " +
        "image_not_found, rate_limited, payload_too_large, …)",
    }),
    field: Type.Optional(Type.String({ description: "validation_failed: the field at fault, if one" })),
    maxBytes: Type.Optional(Type.Integer({ description: "payload_too_large: the limit" })),
    reason: Type.Optional(ref(RejectReasonSchema, { description: "unprocessable_image: why" })),
    limit: Type.Optional(Type.String({ description: 'quota_exceeded: which limit, "bytes" or "images"' })),
    used: Type.Optional(Type.Integer({ description: "quota_exceeded: what counts against it now" })),
    requested: Type.Optional(Type.Integer({ description: "quota_exceeded: what the request would add" })),
    max: Type.Optional(Type.Integer({ description: "quota_exceeded: the limit's value" })),
  },
  {
    $id: "Problem",
    additionalProperties: true,
    description: "An RFC 9457 problem (application/problem+json); every error has this shape",
    examples: [
      {
        type: "https://imgup.dev/problems/validation_failed",
        title: "The request is not valid",
        status: 400,
        detail: 'field "visibility" must be one of "public", "private"',
        code: "validation_failed",
        field: "visibility",
      },
    ],
  },
);

export const ImageListSchema = Type.Object(
  {
    items: Type.Array(ref(ImageSchema)),
    nextCursor: Nullable(Type.String(), "pass as ?cursor= for the next page; null on the last"),
  },
  { $id: "ImageList", description: "One page of images, newest first" },
);

export const ImageEnvelopeSchema = Type.Object(
  { image: ref(ImageSchema) },
  { $id: "ImageEnvelope", description: "An image, wrapped" },
);

export const SignedPartSchema = Type.Object(
  {
    partNumber: Type.Integer({ minimum: 1, maximum: 10_000 }),
    url: Type.String({ description: "PUT the part's bytes here; keep the ETag the storage answers" }),
  },
  { $id: "SignedPart", description: "A presigned URL for one part of a multipart upload" },
);

/** The schemas shared by several files, added to Fastify before any route. */
export const CORE_SCHEMAS: TSchema[] = [
  SignedPartSchema,
  ImageStatusSchema,
  RejectReasonSchema,
  VisibilitySchema,
  ImageSchema,
  ProblemSchema,
  ImageListSchema,
  ImageEnvelopeSchema,
];

/**
 * Adds shared schemas to the root instance: Fastify resolves `ref(...)` through them and
 * @fastify/swagger lists them in components/schemas. Each `$id` once, from the file defining it.
 */
export function addSharedSchemas(app: App, schemas: readonly TSchema[]): void {
  for (const schema of schemas) app.addSchema(schema as TSchema & { $id: string });
}

/** A JSON response: its description is the response's, the schema a shared one. */
/** An error response: what `sendProblem` sends, declared as application/problem+json. */
export const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ref(ProblemSchema) } },
});

/** The errors every authenticated /v1 operation may answer, beside its own. */
export const AUTH_ERRORS = {
  401: problem("No credentials, or the API key or JWT is not valid"),
  429: problem(
    "Too many requests (failed authentications from this address, or a rate limit); see Retry-After",
  ),
};

/** A request that is malformed before routing (bad URL encoding, over the header limits). */
export const MALFORMED = { "4XX": problem("A malformed request (an invalid URL, headers over the limits)") };

export const BearerSecurity = [{ bearer: [] }];
/** Anyone may call it: no credentials. */
export const NoSecurity: Array<Record<string, string[]>> = [];

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
