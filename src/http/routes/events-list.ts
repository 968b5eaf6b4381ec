import { Type } from "typebox";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { EventListSchema } from "./webhooks-schemas.ts";

const DEFAULT_LIMIT = 100;

/** GET /v1/events: the pull alternative to webhooks, with a long poll. */
export function registerListEvents(app: App, deps: Pick<HttpDeps, "eventsFeed" | "config">): void {
  app.get(
    "/v1/events",
    {
      schema: {
        operationId: "listEvents",
        tags: ["Webhooks"],
        summary: "The caller's app events (pull / long poll)",
        description:
          "The same events and JSON webhooks carry, in the order they happened. Pass the answer's " +
          "`cursor` back as `after`; without `after`, from the oldest kept event. With `wait` (seconds, " +
          `at most IMGUP_EVENTS_MAX_WAIT_SECONDS, ${deps.config.webhooks.feedMaxWaitSeconds} here) an empty ` +
          "answer is held until an event arrives or the wait ends.",
        security: BearerSecurity,
        querystring: Type.Object({
          after: Type.Optional(
            Type.String({ minLength: 1, maxLength: 64, description: "a previous `cursor`" }),
          ),
          wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 300, default: 0 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: DEFAULT_LIMIT })),
        }),
        response: {
          200: ref(EventListSchema, { description: "The events after the cursor (maybe none)" }),
          ...AUTH_ERRORS,
          400: problem("The cursor is not one this API issued (invalid_cursor)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => {
      // A client that goes away ends its wait.
      const gone = new AbortController();
      request.raw.once("close", () => gone.abort());
      return deps.eventsFeed.read(principalOf(request).ownerId, {
        after: request.query.after,
        limit: request.query.limit ?? DEFAULT_LIMIT,
        waitSeconds: request.query.wait ?? 0,
        signal: gone.signal,
      });
    },
  );
}
