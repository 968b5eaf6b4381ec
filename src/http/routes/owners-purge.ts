import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import type { AuthService } from "../../services/auth.ts";
import type { OwnerPurgeService } from "../../services/owner-purge.ts";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, addSharedSchemas, BearerSecurity, problem, ref } from "../schemas.ts";
import type { App } from "../types.ts";

export interface OwnerPurgeDeps {
  auth: AuthService;
  ownerPurge: OwnerPurgeService;
}

export const OwnerPurgeSchema = Type.Object(
  {
    ownerId: Type.String(),
    images: Type.Integer({ description: "the owner's images being purged" }),
    markedDeleted: Type.Integer({ description: "images this request hid" }),
  },
  { $id: "OwnerPurge", description: "A purge under way" },
);

/**
 * DELETE /v1/owners/{ownerId}/images: every image of an owner (user withdrawal). 202: the images
 * are hidden at once and a job removes objects and rows; repeating the call resumes it.
 */
export function registerOwnerPurge(app: App, deps: OwnerPurgeDeps): void {
  addSharedSchemas(app, [OwnerPurgeSchema]);
  app.delete(
    "/v1/owners/:ownerId/images",
    {
      schema: {
        operationId: "purgeOwnerImages",
        tags: ["Admin"],
        summary: "Purge every image of an owner (admin scope)",
        description:
          "For a user who leaves: the images are hidden at once (delivery 404s) and a background job " +
          "removes their objects and rows. Repeating the call resumes an interrupted purge.",
        security: BearerSecurity,
        params: Type.Object({ ownerId: Type.String({ pattern: "^[A-Za-z0-9._:@|-]{1,200}$" }) }),
        response: {
          202: ref(OwnerPurgeSchema, { description: "Accepted: the images are hidden, removal is queued" }),
          ...AUTH_ERRORS,
          403: problem("The key does not have the admin scope"),
          "4xx": problem("The request is not valid"),
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
