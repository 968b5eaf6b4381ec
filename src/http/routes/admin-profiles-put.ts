import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import {
  ProfileNameParam,
  profileView,
  UploadProfileSchema,
  UploadProfileSettingsSchema,
} from "./admin-profiles-schemas.ts";

/** PUT /v1/admin/profiles/{name}: create or replace a stored upload profile. */
export function registerPutProfile(app: App, deps: Pick<HttpDeps, "profiles">): void {
  app.put(
    "/v1/admin/profiles/:name",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "putUploadProfile",
        tags: ["Admin"],
        summary: "Create or replace an upload profile (admin scope)",
        description:
          "Stored in the database: every instance applies it to the next intent naming it. Images already " +
          "uploaded keep the limits they were given at their intent. Profiles of IMGUP_PROFILES cannot be " +
          "changed here (409 profile_read_only).",
        security: BearerSecurity,
        params: ProfileNameParam,
        body: ref(UploadProfileSettingsSchema),
        response: {
          200: ref(UploadProfileSchema, { description: "Replaced" }),
          201: ref(UploadProfileSchema, { description: "Created" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          409: problem("The profile is defined by configuration (profile_read_only)"),
          "4xx": problem("The profile is not valid (validation_failed says which field)"),
        },
      },
    },
    async (request, reply) => {
      const { entry, created } = await deps.profiles.put(request.params.name, request.body);
      return reply.code(created ? 201 : 200).send(profileView(entry));
    },
  );
}
