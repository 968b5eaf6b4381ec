import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { WebhookIdSchema } from "./webhooks-schemas.ts";

/** DELETE /v1/webhooks/{id}: the endpoint and its delivery log. */
export function registerDeleteWebhook(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.delete(
    "/v1/webhooks/:id",
    {
      schema: {
        operationId: "deleteWebhook",
        tags: ["Webhooks"],
        summary: "Delete a webhook endpoint",
        description: "Its pending deliveries and its delivery log go with it.",
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        response: {
          204: Type.Null({ description: "Deleted" }),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours)"),
          409: problem("The endpoint comes from the configuration (webhook_managed_by_config)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      await deps.webhooks.delete(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
