import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ProfileNameParam, profileView, UploadProfileSchema } from "./admin-profiles-schemas.ts";

/** GET /v1/admin/profiles/{name}: one upload profile. */
export function registerGetProfile(app: App, deps: Pick<HttpDeps, "profiles">): void {
  app.get(
    "/v1/admin/profiles/:name",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "getUploadProfile",
        tags: ["Admin"],
        summary: "Get an upload profile (admin scope)",
        description:
          "A profile of IMGUP_PROFILES (`source: config`) or stored through this API (`source: api`); a " +
          "name in both is the configuration's.",
        security: BearerSecurity,
        params: ProfileNameParam,
        response: {
          200: ref(UploadProfileSchema, { description: "The profile" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          404: problem("No such profile (profile_not_found)"),
          409: problem("A stored profile no longer fits the deployment (a preset or type was removed)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => profileView(await deps.profiles.get(request.params.name)),
  );
}
