import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import type { AuthService } from "../../services/auth.ts";
import type { OwnerPurgeService } from "../../services/owner-purge.ts";
import { principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ProblemSchema } from "../schemas.ts";
import type { App } from "../types.ts";

export interface OwnerPurgeDeps {
  auth: AuthService;
  ownerPurge: OwnerPurgeService;
}

/**
 * DELETE /v1/owners/{ownerId}/images: every image of an owner (user withdrawal). 202: the images
 * are hidden at once and a job removes objects and rows; repeating the call resumes it.
 */
export function registerOwnerPurge(app: App, deps: OwnerPurgeDeps): void {
  app.delete(
    "/v1/owners/:ownerId/images",
    {
      schema: {
        summary: "Purge every image of an owner (admin scope)",
        security: BearerSecurity,
        params: Type.Object({ ownerId: Type.String({ pattern: "^[A-Za-z0-9._:@|-]{1,200}$" }) }),
        response: {
          202: Type.Object({
            ownerId: Type.String(),
            images: Type.Integer({ description: "the owner's images being purged" }),
            markedDeleted: Type.Integer({ description: "images this request hid" }),
          }),
          "4xx": ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      // The one admin-only route: here "forbidden" tells the truth without revealing anything.
      if (!principalOf(request).scopes.has("admin")) {
        throw ERRORS.forbidden("purging an owner's images needs the admin scope");
      }
      const { ownerId, images, markedDeleted } = await deps.ownerPurge.purge(request.params.ownerId);
      return reply.code(202).send({ ownerId, images, markedDeleted });
    },
  );
}
