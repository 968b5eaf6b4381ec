import { Type } from "typebox";
import { REF_MAX_LENGTH } from "../../domain/profiles.ts";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import {
  AUTH_ERRORS,
  addSharedSchemas,
  BearerSecurity,
  ImageId,
  ImageSchema,
  problem,
  ref,
} from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const ClaimRequestSchema = Type.Object(
  {
    ref: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: REF_MAX_LENGTH,
        description: "the app's reference for the record the image belongs to, e.g. users/42/avatar",
      }),
    ),
    replace: Type.Optional(
      Type.Boolean({
        description: "true: delete the caller's other images holding `ref` (needs `ref`)",
      }),
    ),
  },
  { $id: "ClaimRequest", additionalProperties: false, description: "What the image is claimed for" },
);

export const ClaimResultSchema = Type.Object(
  {
    image: ref(ImageSchema),
    replaced: Type.Array(Type.String(), { description: "ids of the images `replace` deleted" }),
  },
  { $id: "ClaimResult", description: "The claimed image" },
);

/** POST /v1/images/{id}/claim: keep an upload that required a claim, under the app's reference. */
export function registerClaimImage(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, [ClaimRequestSchema, ClaimResultSchema]);
  app.post(
    "/v1/images/:id/claim",
    {
      // A claim without a reference needs no body at all.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: "claimImage",
        tags: ["Images"],
        summary: "Claim an image for an app record",
        description:
          "Call it after the app saved the record that uses the image. An image whose intent asked for a " +
          "claim (or whose profile requires one) is deleted, with its objects, if not claimed by " +
          "`claimExpiresAt`. A pending or processing image may be claimed: it is kept once ready. " +
          "Idempotent: the same claim again answers the same image. `ref` is searchable " +
          "(GET /v1/images?ref=) and set once: another ref on a claimed image is 409 already_claimed. " +
          "`replace: true` deletes the caller's other images holding `ref`.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: ref(ClaimRequestSchema),
        response: {
          200: ref(ClaimResultSchema, { description: "Claimed (now or before)" }),
          ...AUTH_ERRORS,
          404: problem("No such image (or not yours, or deleted: an expired claim deadline deletes it)"),
          409: problem(
            "Rejected or expired (image_not_claimable), or claimed under another ref (already_claimed)",
          ),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request) => {
      const { image, replaced } = await deps.claims.claim(
        principalOf(request),
        request.params.id,
        request.body,
      );
      return { image: toImageView(image, deps.urls), replaced };
    },
  );
}
