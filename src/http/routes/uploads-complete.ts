import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { idempotency } from "../plugins/idempotency.ts";
import {
  AUTH_ERRORS,
  addSharedSchemas,
  BearerSecurity,
  IdempotencyHeaders,
  ImageEnvelopeSchema,
  ImageId,
  problem,
  ref,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const CompleteUploadRequestSchema = Type.Object(
  {
    parts: Type.Optional(
      Type.Array(
        Type.Object(
          {
            partNumber: Type.Integer({ minimum: 1, maximum: 10_000 }),
            etag: Type.String({ minLength: 1, maxLength: 256 }),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 10_000, description: "multipart only: every part, with its ETag" },
      ),
    ),
  },
  {
    $id: "CompleteUploadRequest",
    additionalProperties: false,
    description: "Empty for a PUT or POST upload (the body may be left out); the parts for multipart",
  },
);

/** POST /v1/uploads/{id}/complete: finish a multipart upload, or hint that a PUT/POST finished. */
export function registerCompleteUpload(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, [CompleteUploadRequestSchema]);
  const idem = idempotency(deps.kv, deps.metrics, { rerender: true });
  app.post(
    "/v1/uploads/:id/complete",
    {
      preHandler: [idem.preHandler],
      onSend: idem.onSend,
      // A hint for a PUT upload needs no body at all.
      preValidation: async (request) => {
        request.body ??= {};
      },
      // 10,000 parts with their ETags do not fit the default JSON limit.
      bodyLimit: 2 * 1024 * 1024,
      schema: {
        operationId: "completeUpload",
        tags: ["Uploads"],
        summary: "Complete an upload (multipart: with its parts); processing is queued",
        description:
          "Multipart: assembles the parts. PUT and POST: a hint that the bytes are in the storage (the " +
          "storage's own event does the same; whichever comes first queues processing). Poll GET " +
          "/v1/images/{id} until the status is ready or rejected. Completing an image that is no " +
          "longer pending answers it as it is.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        headers: IdempotencyHeaders,
        body: ref(CompleteUploadRequestSchema),
        response: {
          202: ref(ImageEnvelopeSchema, { description: "Accepted: the image, processing queued" }),
          ...AUTH_ERRORS,
          404: problem("No such upload"),
          409: problem("The bytes have not reached the storage (upload_incomplete), or the key is in use"),
          "4xx": problem("The request is not valid (e.g. a multipart upload without its parts)"),
        },
      },
    },
    async (request, reply) => {
      // A replay reports the image as it is now; completing it again would be a no-op anyway.
      const image = request.idempotency?.replay
        ? await deps.images.get(principalOf(request), request.params.id)
        : await deps.completion.complete(principalOf(request), request.params.id, request.body.parts);
      return reply.code(202).send({ image: toImageView(image, deps.urls) });
    },
  );
}
