import { Type } from "typebox";
import { ownerTransformUrl } from "../../services/image-urls.ts";
import { authenticate, principalOf } from "../plugins/auth.ts";
import { BearerSecurity, ImageId, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/**
 * POST /v1/images/{id}/urls: a signed on-the-fly variant URL for the owner. Clients (the SDK's
 * `url(image, spec)`) cannot sign one themselves: the HMAC key is the server's.
 */
export function registerImageUrls(app: App, deps: HttpDeps): void {
  // The key that signs; every key in IMGUP_URL_SIGNING_KEYS verifies (as the variants route does).
  const transformKey = deps.config.delivery.urlSigningKeys?.[0] ?? deps.urls.secret;
  app.post(
    "/v1/images/:id/urls",
    {
      preHandler: authenticate(deps.auth),
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
      },
    },
    async (request) => {
      const image = await deps.images.get(principalOf(request), request.params.id);
      return { url: ownerTransformUrl(image, request.body.spec, deps.urls, transformKey) };
    },
  );
}
