import { Type } from "typebox";
import { SANDBOX_CSP } from "../delivery-headers.ts";
import { binaryContent, ImageId, NoSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/**
 * GET /v1/moderation/images/{id}/original: what the moderation hook fetches, through the
 * short-lived URL its call carries (signed with the validation secret, never the delivery key).
 * Serves only images under review (processing or held); never cached. Only registered when the
 * hook is configured.
 */
export function registerModerationOriginal(app: App, deps: Pick<HttpDeps, "moderation" | "config">): void {
  if (!deps.config.moderation.url) return;
  app.get(
    "/v1/moderation/images/:id/original",
    {
      // Its own credential: the signature in the query.
      config: { public: true },
      schema: {
        operationId: "getOriginalForModeration",
        tags: ["Moderation"],
        security: NoSecurity,
        summary: "The original of an image under review (the moderation hook's signed URL)",
        description:
          "The `url` of a moderation hook call. Valid until `exp`, only while the image is processing " +
          "or held; otherwise 404.",
        params: Type.Object({ id: ImageId }),
        querystring: Type.Object({
          exp: Type.Optional(Type.String({ maxLength: 20, description: "expiry, unix seconds" })),
          sig: Type.Optional(Type.String({ maxLength: 128, description: "the signature" })),
        }),
        response: {
          200: binaryContent("The original bytes", "image/*"),
          404: problem("No such image under review, or a bad or expired signature"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { head, body } = await deps.moderation.openForReview(request.params.id, request.query);
      reply.header("Cache-Control", "private, no-store");
      reply.header("Content-Security-Policy", SANDBOX_CSP);
      reply.header("Content-Length", head.size);
      return reply.type(head.contentType ?? "application/octet-stream").send(body);
    },
  );
}
