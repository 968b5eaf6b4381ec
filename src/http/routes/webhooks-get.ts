import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { toEndpointView, WebhookEndpointSchema, WebhookIdSchema } from "./webhooks-schemas.ts";

/** GET /v1/webhooks/{id}. */
export function registerGetWebhook(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.get(
    "/v1/webhooks/:id",
    {
      schema: {
        operationId: "getWebhook",
        tags: ["Webhooks"],
        summary: "Get a webhook endpoint",
        description: "Never the secret; `enabled`, `disabledReason` and the failure count show its health.",
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        response: {
          200: ref(WebhookEndpointSchema, { description: "The endpoint" }),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => toEndpointView(await deps.webhooks.get(principalOf(request), request.params.id)),
  );
}
