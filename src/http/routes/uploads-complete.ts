import { Type } from "typebox";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { idempotency } from "../plugins/idempotency.ts";
import { BearerSecurity, IdempotencyHeaders, ImageId, ImageViewSchema, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const Body = Type.Object(
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
        { minItems: 1, maxItems: 10_000 },
      ),
    ),
  },
  { additionalProperties: false },
);

/** POST /v1/uploads/{id}/complete: finish a multipart upload, or hint that a PUT/POST finished. */
export function registerCompleteUpload(app: App, deps: HttpDeps): void {
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
        summary: "Complete an upload (multipart: with its parts); processing is queued",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        headers: IdempotencyHeaders,
        body: Body,
        response: { 202: Type.Object({ image: ImageViewSchema }), "4xx": ProblemSchema },
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
