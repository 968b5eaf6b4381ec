import { Type } from "typebox";
import { IMAGE_STATUSES, type ImageStatus } from "../../domain/image.ts";
import { toImageView } from "../../services/image-view.ts";
import { principalOf } from "../plugins/auth.ts";
import { AUTH_ERRORS, BearerSecurity, ImageListSchema, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** Deleted images are never listed, so filtering on them is refused rather than answered empty. */
const LISTED = IMAGE_STATUSES.filter((s) => s !== "deleted");
const DEFAULT_LIMIT = 20;

/** GET /v1/images: the caller's images, newest first, keyset-paginated. */
export function registerListImages(app: App, deps: HttpDeps): void {
  app.get(
    "/v1/images",
    {
      schema: {
        operationId: "listImages",
        tags: ["Images"],
        summary: "List the caller's images",
        description:
          "Newest first, one page at a time (pass `nextCursor` back as `cursor`). Without `status`, every " +
          "image that is not deleted, pending intents included (an intent never uploaded turns expired " +
          "after the upload window); `status=ready` lists what can be shown. Repeat `status` for several " +
          "(`status=pending&status=processing`). `ref` finds an app record's images (exact match), " +
          "`ref_prefix` those whose ref starts with it. Unknown query parameters are ignored.",
        security: BearerSecurity,
        querystring: Type.Object({
          // Optional with a default: Ajv fills it in (useDefaults), the document says it may be left out.
          limit: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIMIT, description: "page size" }),
          ),
          cursor: Type.Optional(
            Type.String({ minLength: 1, maxLength: 200, description: "`nextCursor` of the previous page" }),
          ),
          status: Type.Optional(
            Type.Array(Type.Unsafe<Exclude<ImageStatus, "deleted">>({ type: "string", enum: [...LISTED] }), {
              minItems: 1,
              maxItems: LISTED.length,
              description: "only images in one of these states",
            }),
          ),
          ref: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 256,
              description: "only images claimed with exactly this ref",
            }),
          ),
          ref_prefix: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 256,
              description: "only images whose ref starts with this (e.g. users/42/)",
            }),
          ),
        }),
        response: {
          200: ref(ImageListSchema, { description: "One page of images" }),
          ...AUTH_ERRORS,
          "4xx": problem("The request is not valid (a limit out of range, a cursor not issued by this API)"),
        },
      },
    },
    async (request) => {
      const { limit, cursor, status, ref: appRef, ref_prefix: refPrefix } = request.query;
      const page = await deps.images.list(principalOf(request), {
        limit: limit ?? DEFAULT_LIMIT,
        ...(cursor === undefined ? {} : { cursor }),
        ...(status === undefined ? {} : { statuses: [...new Set(status)] }),
        ...(appRef === undefined ? {} : { ref: appRef }),
        ...(refPrefix === undefined ? {} : { refPrefix }),
      });
      return { items: page.items.map((i) => toImageView(i, deps.urls)), nextCursor: page.nextCursor };
    },
  );
}
