import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { EventTypeSchema, toEndpointView, WebhookWithSecretSchema } from "./webhooks-schemas.ts";

/** POST /v1/webhooks: register an endpoint; its signing secret is in this answer only. */
export function registerCreateWebhook(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.post(
    "/v1/webhooks",
    {
      schema: {
        operationId: "createWebhook",
        tags: ["Webhooks"],
        summary: "Register a webhook endpoint",
        description:
          "imgup POSTs the caller's app events to `url`, signed per Standard Webhooks with the returned " +
          "`whsec_` secret (shown once). `events` narrows the types (default: all). An admin may register " +
          "a deployment-wide endpoint (`scope: deployment`) that gets every owner's events. URLs that " +
          "resolve to private, loopback or link-local addresses are refused unless the operator allows them.",
        security: BearerSecurity,
        body: Type.Object(
          {
            url: Type.String({ minLength: 1, maxLength: 2000, description: "http(s) URL of the receiver" }),
            events: Type.Optional(Type.Array(ref(EventTypeSchema), { maxItems: 10 })),
            description: Type.Optional(Type.String({ maxLength: 500 })),
            scope: Type.Optional(Type.Union([Type.Literal("owner"), Type.Literal("deployment")])),
          },
          { additionalProperties: false },
        ),
        response: {
          201: ref(WebhookWithSecretSchema, { description: "Registered; the secret is shown this once" }),
          ...AUTH_ERRORS,
          400: problem(
            "Not valid: invalid_webhook_url, webhook_url_not_allowed (a private address), validation_failed",
          ),
          403: problem("A deployment-wide endpoint needs the admin scope"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await deps.webhooks.create(principalOf(request), request.body);
      return reply
        .code(201)
        .header("Cache-Control", "no-store")
        .send({ endpoint: toEndpointView(endpoint), secret });
    },
  );
}
