import { Type } from "typebox";
import { ownerTransformUrl } from "../../services/image-urls.ts";
import { principalOf } from "../plugins/auth.ts";
import { rateLimit } from "../plugins/rate-limit.ts";
import { AUTH_ERRORS, addSharedSchemas, BearerSecurity, ImageId, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

export const SignUrlRequestSchema = Type.Object(
  {
    spec: Type.String({
      minLength: 1,
      maxLength: 256,
      description: "e.g. w_400,h_300,fit_cover,f_auto",
    }),
  },
  { $id: "SignUrlRequest", additionalProperties: false, description: "The transform to sign" },
);

export const SignedUrlSchema = Type.Object(
  { url: Type.String({ description: "the variant's delivery URL; private images: expiring" }) },
  { $id: "SignedUrl" },
);

/**
 * POST /v1/images/{id}/urls: a signed on-the-fly variant URL for the owner. Clients (the SDK's
 * `url(image, spec)`) cannot sign one themselves: the HMAC key is the server's.
 */
export function registerImageUrls(app: App, deps: HttpDeps): void {
  addSharedSchemas(app, [SignUrlRequestSchema, SignedUrlSchema]);
  // The key that signs; every key in IMGUP_URL_SIGNING_KEYS verifies (as the variants route does).
  const transformKey = deps.config.delivery.urlSigningKeys?.[0] ?? deps.urls.secret;
  // Each signed spec is a distinct transform the owner can then ask for: unlimited signing would
  // let one owner queue any number of transforms.
  const signLimit = rateLimit(deps.kv, deps.metrics, {
    name: "sign_urls",
    ratePerSecond: deps.config.delivery.signPerSecond,
    burst: deps.config.delivery.signBurst,
    keyOf: (request) => principalOf(request).ownerId,
  });
  app.post(
    "/v1/images/:id/urls",
    {
      preHandler: [signLimit],
      schema: {
        operationId: "signImageUrl",
        tags: ["Images"],
        summary: "Sign an on-the-fly variant URL (e.g. w_400,h_300,fit_cover) for one of your images",
        description:
          "Only the server holds the signing key. The variant is made on its first request and then " +
          "served from the storage. Rate-limited per owner (IMGUP_SIGN_URLS_PER_SEC, " +
          "IMGUP_SIGN_URLS_BURST): 429 with Retry-After.",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: ref(SignUrlRequestSchema),
        response: {
          200: ref(SignedUrlSchema, { description: "The signed URL" }),
          ...AUTH_ERRORS,
          404: problem("No such image (or not yours)"),
          "4xx": problem("The spec is not valid (invalid_spec), or the request is not"),
        },
      },
    },
    async (request) => {
      const image = await deps.images.get(principalOf(request), request.params.id);
      return { url: ownerTransformUrl(image, request.body.spec, deps.urls, transformKey) };
    },
  );
}
