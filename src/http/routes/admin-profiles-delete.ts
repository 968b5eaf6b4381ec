import { Type } from "typebox";
import { requireAdmin } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ProfileNameParam } from "./admin-profiles-schemas.ts";

/** DELETE /v1/admin/profiles/{name}: delete a stored upload profile. */
export function registerDeleteProfile(app: App, deps: Pick<HttpDeps, "profiles">): void {
  app.delete(
    "/v1/admin/profiles/:name",
    {
      preHandler: requireAdmin,
      schema: {
        operationId: "deleteUploadProfile",
        tags: ["Admin"],
        summary: "Delete an upload profile (admin scope)",
        description:
          "Intents naming it are then 400 unknown_profile; images uploaded under it keep their limits.",
        security: BearerSecurity,
        params: ProfileNameParam,
        response: {
          204: Type.Null({ description: "Deleted" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          404: problem("No such stored profile (profile_not_found)"),
          409: problem("The profile is defined by configuration (profile_read_only)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      await deps.profiles.delete(request.params.name);
      return reply.code(204).send(null);
    },
  );
}
