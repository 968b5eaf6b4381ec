import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { toEndpointView, WebhookEndpointListSchema } from "./webhooks-schemas.ts";

/** GET /v1/webhooks: the caller's endpoints, with why one was disabled. */
export function registerListWebhooks(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.get(
    "/v1/webhooks",
    {
      schema: {
        operationId: "listWebhooks",
        tags: ["Webhooks"],
        summary: "List webhook endpoints",
        description:
          "Oldest first, never the secrets. An endpoint imgup disabled after sustained failure shows " +
          '`enabled: false` and `disabledReason`; `PATCH` it with `{"enabled": true}` to resume. Admins ' +
          "see the deployment-wide endpoints too.",
        security: BearerSecurity,
        response: {
          200: ref(WebhookEndpointListSchema, { description: "The endpoints" }),
          ...AUTH_ERRORS,
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => ({ items: (await deps.webhooks.list(principalOf(request))).map(toEndpointView) }),
  );
}
