import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, addSharedSchemas, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { QUOTA_SCHEMAS, toUsageJson, UsageSchema } from "./quota-schemas.ts";

/** GET /v1/usage: the caller's bytes and images against their quota. */
export function registerGetUsage(app: App, deps: Pick<HttpDeps, "quotas">): void {
  // Shared by this route and the admin quota routes, registered after it.
  addSharedSchemas(app, QUOTA_SCHEMAS);
  app.get(
    "/v1/usage",
    {
      schema: {
        operationId: "getUsage",
        tags: ["Usage"],
        summary: "Get the caller's usage and quota",
        description:
          "Bytes stored (originals and variants) and reserved by uploads in flight, the image count, and " +
          "the limits an upload intent is checked against (see quota_exceeded).",
        security: BearerSecurity,
        response: {
          200: ref(UsageSchema, { description: "The caller's usage" }),
          ...AUTH_ERRORS,
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => {
      const { ownerId } = principalOf(request);
      return toUsageJson(ownerId, await deps.quotas.view(ownerId));
    },
  );
}
