import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, addSharedSchemas, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { PROFILE_SCHEMAS, profileView, UploadProfileListSchema } from "./admin-profiles-schemas.ts";

/** GET /v1/admin/profiles: every upload profile, configured and stored. */
export function registerListProfiles(app: App, deps: Pick<HttpDeps, "profiles">): void {
  // The list route is registered first of the profile routes: it brings their shared schemas.
  addSharedSchemas(app, PROFILE_SCHEMAS);
  app.get(
    "/v1/admin/profiles",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "listUploadProfiles",
        tags: ["Admin"],
        summary: "List upload profiles (admin scope)",
        description:
          "Those of IMGUP_PROFILES (`source: config`) and those stored through this API (`source: api`).",
        security: BearerSecurity,
        response: {
          200: ref(UploadProfileListSchema, { description: "Every profile, by name" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async () => ({ items: (await deps.profiles.list()).map(profileView) }),
  );
}
