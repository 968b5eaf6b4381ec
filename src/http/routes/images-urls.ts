import { Type } from "typebox";
import { ownerTransformUrl } from "../../services/image-urls.ts";
import { principalOf } from "../plugins/auth.ts";
import { rateLimit } from "../plugins/rate-limit.ts";
import { BearerSecurity, ImageId, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/**
 * POST /v1/images/{id}/urls: a signed on-the-fly variant URL for the owner. Clients (the SDK's
 * `url(image, spec)`) cannot sign one themselves: the HMAC key is the server's.
 */
export function registerImageUrls(app: App, deps: HttpDeps): void {
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
        summary: "Sign an on-the-fly variant URL (e.g. w_400,h_300,fit_cover) for one of your images",
        security: BearerSecurity,
        params: Type.Object({ id: ImageId }),
        body: Type.Object(
          {
            spec: Type.String({
              minLength: 1,
              maxLength: 256,
              description: "e.g. w_400,h_300,fit_cover,f_auto",
            }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ url: Type.String() }), "4xx": ProblemSchema },
        description:
          "Rate-limited per owner (IMGUP_SIGN_URLS_PER_SEC, IMGUP_SIGN_URLS_BURST): 429 with Retry-After.",
      },
    },
    async (request) => {
      const image = await deps.images.get(principalOf(request), request.params.id);
      return { url: ownerTransformUrl(image, request.body.spec, deps.urls, transformKey) };
    },
  );
}
