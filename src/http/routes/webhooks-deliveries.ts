import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { DeliveryListSchema, toDeliveryView, WebhookIdSchema } from "./webhooks-schemas.ts";

const DEFAULT_LIMIT = 50;

/** GET /v1/webhooks/{id}/deliveries: the delivery log. */
export function registerListWebhookDeliveries(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      schema: {
        operationId: "listWebhookDeliveries",
        tags: ["Webhooks"],
        summary: "The delivery log of a webhook endpoint",
        description:
          "Newest first: each event sent (or to be sent) to the endpoint, with its attempts, the last " +
          "answer's status or error, and the next attempt's time while it is pending.",
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_LIMIT })),
          cursor: Type.Optional(
            Type.String({ pattern: "^[0-9]{1,18}$", description: "`nextCursor` of the previous page" }),
          ),
        }),
        response: {
          200: ref(DeliveryListSchema, { description: "One page of deliveries" }),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const items = await deps.webhooks.deliveries(principalOf(request), request.params.id, {
        limit,
        before: request.query.cursor,
      });
      return {
        items: items.map(toDeliveryView),
        nextCursor: items.length === limit ? (items.at(-1)?.id ?? null) : null,
      };
    },
  );
}
