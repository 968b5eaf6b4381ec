import { type Readable, Transform } from "node:stream";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import { toImageView } from "../../services/image-view.ts";
import { type ProxyUploadInput, UNTYPED } from "../../services/proxy-upload.ts";
import { FORM_OVERHEAD_BYTES, receiveMultipartFile } from "../multipart-file.ts";
import { principalOf } from "../plugins/auth.ts";
import { idempotency, unlessReplayed } from "../plugins/idempotency.ts";
import { intentRateLimit } from "../plugins/rate-limit.ts";
import { type BodyDescriptor, describeBody, lingerOnClose, requestBody } from "../proxy-body.ts";
import {
  AUTH_ERRORS,
  BearerSecurity,
  IdempotencyHeaders,
  ImageEnvelopeSchema,
  problem,
  ref,
  VisibilitySchema,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

// Unknown parameters are ignored (cache-busters, tracking parameters), as on every route.
const Query = Type.Object({
  filename: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  visibility: Type.Optional(ref(VisibilitySchema)),
  sha256: Type.Optional(
    Type.String({ minLength: 64, maxLength: 64, description: "SHA-256 of the body, hex; a mismatch is 422" }),
  ),
});
type QueryValues = { filename?: string; visibility?: "public" | "private"; sha256?: string };

const Headers = Type.Object({
  ...IdempotencyHeaders.properties,
  "x-filename": Type.Optional(
    Type.String({ description: "the file's name (percent-encoded UTF-8 allowed)" }),
  ),
  "x-content-sha256": Type.Optional(
    Type.String({ description: "SHA-256 of the body, hex; a mismatch is 422" }),
  ),
});

// Fastify never parses this body (it is streamed to the storage), so its schema only documents it.
const Body = Type.Unsafe<unknown>({
  description:
    "The image: raw bytes as image/… or application/octet-stream (the magic bytes decide), or " +
    "multipart/form-data with the optional fields visibility, filename and sha256 before one file part named file",
});
const CONSUMES = ["image/*", "application/octet-stream", "multipart/form-data"];

const FORM = "multipart/form-data";
/**
 * What the streams between the form cap and the file's meter may hold: a file over the limit is
 * reported by its own meter (with what was read of it), not by the cap on the whole form.
 */
const FORM_SLACK_BYTES = 1024 * 1024;

/**
 * POST /v1/images: proxy upload for clients that cannot upload to the storage themselves. The body
 * (raw `image/…` or `application/octet-stream`, or a form with a `file` part) is never parsed by
 * Fastify: it is streamed to the storage by the proxy upload service.
 */
export function registerCreateImage(app: App, deps: HttpDeps): void {
  // Replays answer from the image as it is now: the first answer was pending, with no URLs.
  const idem = idempotency(deps.kv, deps.metrics, { rerender: true });
  const maxBytes = deps.config.uploads.maxBytes;
  // The body stream Fastify would have parsed, and the requests whose body reading has begun.
  const payloads = new WeakMap<FastifyRequest, Readable>();
  const reading = new WeakSet<FastifyRequest>();

  app.register(async (scope) => {
    // Only in this plugin's scope: every other route keeps its JSON parser and body limit.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (request, payload, done) => {
      payloads.set(request, payload);
      done(null, describeBody(request.headers));
    });
    scope.addHook("onSend", async (request, reply) => {
      if (request.raw.complete) return;
      // Node drains an unread body before the connection's next request; a body read partway,
      // or one too long to drain, ends the connection instead (gracefully, see lingerOnClose).
      const length = Number(request.headers["content-length"]);
      if (reading.has(request) || !Number.isSafeInteger(length) || length > maxBytes) {
        reply.header("Connection", "close");
        lingerOnClose(request.raw);
      }
    });

    scope.post(
      "/v1/images",
      {
        // As for intents: replays and in-flight duplicates are answered before they cost a token.
        preHandler: [idem.preHandler, unlessReplayed(intentRateLimit(deps))],
        onSend: idem.onSend,
        schema: {
          operationId: "uploadImage",
          tags: ["Images"],
          summary: "Proxy upload: the body is the image (raw, or multipart/form-data with a file part)",
          description:
            "For clients that cannot upload to the storage themselves: imgup streams the body to the " +
            "storage. Fields come from the form, the query or X-Filename/X-Content-SHA256, in that " +
            "order. The answer comes once the bytes are stored; processing follows (poll the image). " +
            "Location names the image. Rate-limited per owner like intents (429 with Retry-After).",
          security: BearerSecurity,
          headers: Headers,
          querystring: Query,
          consumes: CONSUMES,
          body: Body,
          response: {
            201: ref(ImageEnvelopeSchema, { description: "Stored: the image, processing queued" }),
            ...AUTH_ERRORS,
            409: problem("The Idempotency-Key is in use by a request that has not finished"),
            413: problem("The body is over the upload limit (maxBytes says it)"),
            415: problem("The body is not image/…, application/octet-stream or multipart/form-data"),
            422: problem(
              "The body does not match the declared SHA-256, or the key was used with another request",
            ),
            "4xx": problem("The request is not valid (an empty body, a malformed form)"),
            503: problem("The metadata database is unreachable; see Retry-After"),
          },
        },
      },
      async (request, reply) => {
        const replay = request.idempotency?.replay;
        if (replay) {
          // The body is not read: the onSend hook above drains or closes it.
          const image = await deps.images.get(principalOf(request), replay.imageId);
          reply.header("Location", `/v1/images/${image.id}`);
          return reply.code(201).send({ image: toImageView(image, deps.urls) });
        }
        const described = request.body as BodyDescriptor | undefined;
        const payload = payloads.get(request);
        if (!described || !payload) {
          throw ERRORS.validation("send the image as the request body (raw, or a form with a file part)");
        }
        const query = request.query as QueryValues;
        const markReading = () => reading.add(request);
        const input =
          described.mediaType === FORM
            ? await formInput(request, payload, described, query, maxBytes, markReading)
            : rawInput(payload, described, query, markReading);
        const result = await deps.proxyUploads.upload(principalOf(request), input, request.idempotency?.key);
        reply.header("Location", `/v1/images/${result.image.id}`);
        if (result.kind === "existing") reply.header("Idempotent-Replayed", "true");
        return reply.code(201).send({ image: toImageView(result.image, deps.urls) });
      },
    );
  });
}

function rawInput(
  payload: Readable,
  described: BodyDescriptor,
  query: QueryValues,
  markReading: () => void,
): ProxyUploadInput {
  const type = described.mediaType;
  if (!type.startsWith("image/") && type !== UNTYPED) {
    throw ERRORS.unsupportedMediaType(
      `send the image as image/…, ${UNTYPED} (the bytes decide) or ${FORM}; got "${type || "no Content-Type"}"`,
    );
  }
  return {
    contentType: type,
    filename: query.filename ?? described.filename ?? undefined,
    sha256: query.sha256 ?? described.sha256 ?? undefined,
    visibility: query.visibility,
    declaredLength: described.contentLength ?? undefined,
    open: () => {
      markReading();
      return requestBody(payload);
    },
  };
}

/** Form fields win over the query and headers; the file part's own filename comes next. */
async function formInput(
  request: FastifyRequest,
  payload: Readable,
  described: BodyDescriptor,
  query: QueryValues,
  maxBytes: number,
  markReading: () => void,
): Promise<ProxyUploadInput> {
  if (described.contentLength !== null && described.contentLength > maxBytes + FORM_OVERHEAD_BYTES) {
    throw ERRORS.payloadTooLarge(
      `Content-Length ${described.contentLength} exceeds the limit of ${maxBytes} bytes (plus the form's own)`,
      { extra: { maxBytes } },
    );
  }
  markReading();
  const form = await receiveMultipartFile(
    capped(payload, maxBytes + FORM_OVERHEAD_BYTES + FORM_SLACK_BYTES),
    request.headers,
  );
  const visibility = form.fields.visibility ?? query.visibility;
  if (visibility !== undefined && visibility !== "public" && visibility !== "private") {
    form.stream.destroy();
    throw ERRORS.validation('visibility must be "public" or "private"', { extra: { field: "visibility" } });
  }
  const type = form.mimeType.toLowerCase();
  if (type !== UNTYPED && !type.startsWith("image/")) {
    form.stream.destroy();
    throw ERRORS.unsupportedMediaType(`the file part must be image/… or ${UNTYPED}; got "${type}"`);
  }
  return {
    contentType: type,
    filename: form.fields.filename ?? form.filename ?? query.filename ?? described.filename ?? undefined,
    sha256: form.fields.sha256 ?? query.sha256 ?? described.sha256 ?? undefined,
    visibility,
    open: () => form.stream,
    afterBody: form.rest,
  };
}

/**
 * Every byte of a form counts toward the limit, not only the file's: a preamble, an epilogue or
 * parts the parser skips would otherwise be read without bound (a chunked body has no
 * Content-Length to refuse up front).
 */
function capped(payload: Readable, limit: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) {
        done(
          ERRORS.payloadTooLarge(
            `the form is larger than the limit of ${limit} bytes (file and form together)`,
            {
              extra: { maxBytes: limit },
            },
          ),
        );
        payload.unpipe(counter);
        return;
      }
      done(null, chunk);
    },
  });
  // The form reader learns of every failure through this stream's 'error' and 'close' (and one
  // that never got to read it, a malformed Content-Type, must not leave the 'error' unhandled).
  counter.on("error", () => undefined);
  payload.on("error", (err) => counter.destroy(err));
  payload.once("close", () => {
    if (!payload.readableEnded) counter.destroy();
  });
  payload.pipe(counter);
  return counter;
}
