import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import {
  EventTypeSchema,
  toEndpointView,
  WebhookEndpointSchema,
  WebhookIdSchema,
} from "./webhooks-schemas.ts";

/** PATCH /v1/webhooks/{id}: change the URL or types, or re-enable a disabled endpoint. */
export function registerUpdateWebhook(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.patch(
    "/v1/webhooks/:id",
    {
      schema: {
        operationId: "updateWebhook",
        tags: ["Webhooks"],
        summary: "Change or re-enable a webhook endpoint",
        description:
          '`{"enabled": true}` resumes an endpoint imgup disabled: its pending deliveries go out again, in ' +
          "order. Events that happened while it was disabled were not queued for it: replay them with " +
          '`POST /v1/webhooks/{id}/replay {"since": disabledAt}`.',
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        body: Type.Object(
          {
            url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
            events: Type.Optional(Type.Array(ref(EventTypeSchema), { maxItems: 10 })),
            description: Type.Optional(Type.String({ maxLength: 500 })),
            enabled: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: {
          200: ref(WebhookEndpointSchema, { description: "The endpoint as it now is" }),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours)"),
          409: problem("The endpoint comes from the configuration (webhook_managed_by_config)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) =>
      toEndpointView(await deps.webhooks.update(principalOf(request), request.params.id, request.body)),
  );
}
