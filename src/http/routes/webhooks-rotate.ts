import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { toEndpointView, WebhookIdSchema, WebhookWithSecretSchema } from "./webhooks-schemas.ts";

/** POST /v1/webhooks/{id}/rotate-secret: a new secret; the old one keeps signing for a while. */
export function registerRotateWebhookSecret(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.post(
    "/v1/webhooks/:id/rotate-secret",
    {
      schema: {
        operationId: "rotateWebhookSecret",
        tags: ["Webhooks"],
        summary: "Rotate a webhook endpoint's signing secret",
        description:
          "Returns the new secret (once). Until `previousSecretExpiresAt` (default 24 h, " +
          "`keepPreviousSeconds` to change) every webhook carries two signatures, one per secret " +
          "(`webhook-signature: v1,<new> v1,<old>`), so receivers can switch without losing a message.",
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        body: Type.Optional(
          Type.Object(
            { keepPreviousSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })) },
            { additionalProperties: false },
          ),
        ),
        response: {
          200: ref(WebhookWithSecretSchema, { description: "The new secret, shown this once" }),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours)"),
          409: problem("The endpoint comes from the configuration (webhook_managed_by_config)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await deps.webhooks.rotate(
        principalOf(request),
        request.params.id,
        request.body?.keepPreviousSeconds,
      );
      return reply.header("Cache-Control", "no-store").send({ endpoint: toEndpointView(endpoint), secret });
    },
  );
}
