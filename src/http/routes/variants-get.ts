import type { FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import type { MissCharges, Variant, VariantRequest } from "../../services/variants.ts";
import { applyCacheHeaders } from "../delivery-headers.ts";
import { appendVary } from "../plugins/cors.ts";
import { keyedRateLimit, rateLimit } from "../plugins/rate-limit.ts";
import { binaryContent, ImageId, NoSecurity, NotModified, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const VariantResponses = {
  200: binaryContent("The variant (made on the first request, then served from the storage)", "image/*"),
  302: {
    description: "S3 with IMGUP_S3_DELIVERY_REDIRECT=presigned: the variant, from the bucket (Location)",
    type: "null",
  },
  304: NotModified,
  403: problem("On-the-fly: the signature does not match the spec and image (invalid_signature)"),
  404: problem("No such image or preset, not ready, or private without a valid exp and sig"),
  429: problem("Too many transforms for this client or this image owner; retry after Retry-After"),
  "4xx": problem("The request is not valid (e.g. a malformed spec)"),
  503: problem("The transform queue is full; retry after Retry-After"),
};

const SignedQuery = Type.Object({
  exp: Type.Optional(Type.String({ maxLength: 20, description: "private images: expiry, unix seconds" })),
  sig: Type.Optional(Type.String({ maxLength: 128, description: "private images: the URL's signature" })),
});

/**
 * GET /i/{imageId}/{preset} and the signed on-the-fly GET /i/{signature}/{spec}/{imageId}.
 * A variant is made once and then served from the storage; CDNs may keep it forever.
 */
export function registerGetVariants(app: App, deps: HttpDeps): void {
  const variants = deps.variants;
  // Only cache misses cost a token: the expensive path is what a scraper could abuse.
  const missLimit = rateLimit(deps.kv, deps.metrics, {
    name: "transform_misses",
    ratePerSecond: deps.config.delivery.missesPerSecond,
    burst: deps.config.delivery.missesBurst,
    keyOf: (request) => request.ip,
  });
  // The image owner's budget, whoever asks: many clients cannot make one owner's images take every
  // transform slot. The client's headers are the ones shown; a refusal still says Retry-After.
  const ownerMissLimit = keyedRateLimit(deps.kv, deps.metrics, {
    name: "transform_owner_misses",
    ratePerSecond: deps.config.delivery.ownerMissesPerSecond,
    burst: deps.config.delivery.ownerMissesBurst,
    headers: false,
  });
  /**
   * The cost of a miss (services/variants.ts MissCharges). The owner is known only once the variant
   * was authorized, which is before `open()` can call this back, so the callback reads the variant
   * it belongs to.
   */
  const chargeMiss = (
    request: FastifyRequest,
    reply: FastifyReply,
    variant: () => Variant | undefined,
  ): MissCharges => ({
    client: () => missLimit(request, reply),
    owner: async () => {
      const owner = variant()?.auth.image.ownerId;
      if (!owner) throw new Error("a transform was requested before its variant was authorized");
      await ownerMissLimit(owner, request, reply);
    },
  });
  const toRequest = (
    request: FastifyRequest,
    imageId: string,
    query: VariantRequest["query"],
  ): VariantRequest => ({
    imageId,
    path: request.url.split("?")[0] ?? request.url,
    query,
    accept: request.headers.accept,
  });
  const send = async (request: FastifyRequest, reply: FastifyReply, v: Variant) => {
    // Appended: CORS may have put Origin there already.
    if (v.negotiated) appendVary(reply, "Accept");
    if (applyCacheHeaders(request, reply, v.auth, v.etag, v.lastModified)) return reply.code(304).send();
    const opened = await v.open();
    if (opened.redirect) {
      // The bucket serves the bytes (IMGUP_S3_DELIVERY_REDIRECT): cacheable only while the URL lives.
      reply.header("Cache-Control", `public, max-age=${opened.redirect.maxAgeSeconds}`);
      return reply.code(302).header("Location", opened.redirect.location).send();
    }
    reply.header("Content-Length", opened.size);
    return reply.type(v.contentType).send(opened.body);
  };

  app.get(
    "/i/:imageId/:preset",
    {
      schema: {
        operationId: "getPresetVariant",
        tags: ["Delivery"],
        summary: "A named preset variant (private images need exp and sig)",
        description:
          "A preset configured on the server (thumb, medium, …), from `urls.presets` of the image. " +
          "Format negotiated by Accept where the preset says so (Vary: Accept). Cacheable; ETag and " +
          "If-None-Match. Unknown query parameters are ignored.",
        security: NoSecurity,
        params: Type.Object({ imageId: ImageId, preset: Type.String({ maxLength: 64 }) }),
        querystring: SignedQuery,
        response: VariantResponses,
      },
    },
    async (request, reply) => {
      const { imageId, preset } = request.params;
      let v: Variant | undefined;
      v = await variants.preset(
        preset,
        toRequest(request, imageId, request.query),
        chargeMiss(request, reply, () => v),
      );
      return send(request, reply, v);
    },
  );

  app.get(
    "/i/:signature/:spec/:imageId",
    {
      schema: {
        operationId: "getTransformedVariant",
        tags: ["Delivery"],
        summary: "An on-the-fly variant, e.g. w_400,h_300,fit_cover,f_auto,q_80, HMAC-signed",
        description:
          "The URL comes from POST /v1/images/{id}/urls: the signature covers the spec and the id, so " +
          "nobody can ask for transforms the owner did not sign. Made on the first request (a miss " +
          "is rate-limited), then served from the storage. Unknown query parameters are ignored.",
        security: NoSecurity,
        params: Type.Object({
          signature: Type.String({ maxLength: 128 }),
          spec: Type.String({ maxLength: 256 }),
          imageId: ImageId,
        }),
        querystring: SignedQuery,
        response: VariantResponses,
      },
    },
    async (request, reply) => {
      const { signature, spec, imageId } = request.params;
      let v: Variant | undefined;
      v = await variants.signed(
        signature,
        spec,
        toRequest(request, imageId, request.query),
        chargeMiss(request, reply, () => v),
      );
      return send(request, reply, v);
    },
  );
}
