import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { WebhookIdSchema } from "./webhooks-schemas.ts";

/** POST /v1/webhooks/{id}/replay: send one event again, or every event since a time. */
export function registerReplayWebhook(app: App, deps: Pick<HttpDeps, "webhooks">): void {
  app.post(
    "/v1/webhooks/:id/replay",
    {
      schema: {
        operationId: "replayWebhook",
        tags: ["Webhooks"],
        summary: "Replay events to a webhook endpoint",
        description:
          '`{"eventId": "evt_…"}` queues that event again; `{"since": "<date-time>"}` queues every ' +
          "event of the endpoint's types since then (at most 10,000), in order. Replays carry the " +
          "original `webhook-id`, so a receiver that de-duplicates must accept an id it saw once it asks for it.",
        security: BearerSecurity,
        params: Type.Object({ id: WebhookIdSchema }),
        body: Type.Object(
          {
            eventId: Type.Optional(Type.String({ pattern: "^evt_[0-9a-f]{32}$" })),
            since: Type.Optional(Type.String({ format: "date-time" })),
          },
          { additionalProperties: false, minProperties: 1, maxProperties: 1 },
        ),
        response: {
          202: Type.Object(
            { queued: Type.Integer({ minimum: 0, description: "deliveries queued" }) },
            { description: "Queued" },
          ),
          ...AUTH_ERRORS,
          404: problem("No such endpoint (or not yours), or no such event (event_not_found)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { eventId, since } = request.body;
      const which = eventId ? { eventId } : since ? { since: new Date(since) } : null;
      if (!which) throw ERRORS.validation("give eventId or since");
      const queued = await deps.webhooks.replay(principalOf(request), request.params.id, which);
      return reply.code(202).send({ queued });
    },
  );
}
