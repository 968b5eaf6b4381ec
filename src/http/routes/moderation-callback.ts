import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import { NoSecurity, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";
import { ModerationResultSchema, toModerationResult } from "./moderation-schemas.ts";

const CallbackBodySchema = Type.Object(
  {
    imageId: Type.String({ minLength: 1, maxLength: 64 }),
    decision: Type.Union([Type.Literal("allow"), Type.Literal("reject"), Type.Literal("hold")]),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

/** The signature covers the exact bytes sent, so the body is kept as text beside its parse. */
const rawBodies = new WeakMap<FastifyRequest, string>();

const header = (request: FastifyRequest, name: string) => {
  const v = request.headers[name];
  return typeof v === "string" ? v : undefined;
};

/**
 * POST /v1/moderation/callback: the hook's later decision on a held image, signed like imgup's
 * own call to it (Standard Webhooks headers, IMGUP_VALIDATION_SECRET), checked before the body is
 * validated. allow approves, reject rejects; hold leaves the image as it is. Only registered when
 * the hook is configured.
 */
export function registerModerationCallback(app: App, deps: Pick<HttpDeps, "moderation" | "config">): void {
  if (!deps.config.moderation.url) return;
  app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
      const text = String(body);
      rawBodies.set(request, text);
      try {
        done(null, JSON.parse(text));
      } catch {
        done(ERRORS.validation("the body is not JSON"), undefined);
      }
    });
    scope.post(
      "/v1/moderation/callback",
      {
        bodyLimit: 16 * 1024,
        config: { public: true },
        preValidation: async (request) => {
          deps.moderation.verifyCallback(
            {
              id: header(request, "webhook-id"),
              timestamp: header(request, "webhook-timestamp"),
              signature: header(request, "webhook-signature"),
            },
            rawBodies.get(request) ?? "",
          );
        },
        schema: {
          operationId: "moderationCallback",
          tags: ["Moderation"],
          security: NoSecurity,
          summary: "The moderation hook's later decision on a held image",
          description:
            "Signed with IMGUP_VALIDATION_SECRET as Standard Webhooks (webhook-id, webhook-timestamp, " +
            "webhook-signature over `id.timestamp.body`). allow: held -> ready; reject: held -> rejected " +
            "(moderation, reason kept) and the bytes deleted; hold: no change.",
          body: CallbackBodySchema,
          response: {
            200: ref(ModerationResultSchema, { description: "The image after the decision" }),
            401: problem("Not signed with the validation secret, or the timestamp is too old"),
            404: problem("No such image"),
            409: problem("The image is not held"),
            "4xx": problem("The request is not valid"),
          },
        },
      },
      async (request) => {
        const { imageId, decision, reason } = request.body;
        if (decision === "allow") return toModerationResult(await deps.moderation.approve(imageId));
        if (decision === "reject") return toModerationResult(await deps.moderation.reject(imageId, reason));
        return toModerationResult(await deps.moderation.current(imageId));
      },
    );
  });
}
