import { Type } from "typebox";
import { contentDisposition } from "../../domain/filename.ts";
import { originalPath } from "../../services/image-view.ts";
import { applyCacheHeaders, SANDBOX_CSP } from "../delivery-headers.ts";
import { binaryContent, ImageId, NoSecurity, NotModified, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/** GET /i/{imageId}/original: the untouched upload, with its real content type. */
export function registerGetOriginal(app: App, deps: HttpDeps): void {
  app.get(
    "/i/:imageId/original",
    {
      schema: {
        operationId: "getOriginal",
        tags: ["Delivery"],
        security: NoSecurity,
        summary: "Download the original (private images need exp and sig)",
        description:
          "Without a signature, a public image's original comes without EXIF (GPS), XMP, IPTC and comments when the upload carried any (same coded pixels, colour profile and orientation kept). A signed URL (`urls.source` of the image view) serves the untouched upload.",
        params: Type.Object({ imageId: ImageId }),
        querystring: Type.Object({
          exp: Type.Optional(
            Type.String({ maxLength: 20, description: "signed URLs: expiry, unix seconds" }),
          ),
          sig: Type.Optional(Type.String({ maxLength: 128, description: "signed URLs: the signature" })),
        }),
        response: {
          200: binaryContent("The original bytes, with the type they were validated as", "image/*"),
          304: NotModified,
          404: problem("No such image, not ready, or private without a valid signature (never 403)"),
          "4xx": problem("The request is not valid"),
        },
      },
    },
    async (request, reply) => {
      const { imageId } = request.params;
      const auth = await deps.delivery.authorize(imageId, originalPath(imageId), request.query);
      const { image } = auth;
      // The stripped copy and the untouched original are different bytes: different validators.
      const etag = auth.signed ? `"${image.sha256}"` : `"${image.sha256}-public"`;
      reply.header("Content-Security-Policy", SANDBOX_CSP);
      reply.header("Content-Disposition", contentDisposition(image.filename));
      if (applyCacheHeaders(request, reply, auth, etag, image.readyAt ?? image.updatedAt)) {
        return reply.code(304).send();
      }
      const { head, body } = await deps.delivery.openOriginal(auth);
      reply.header("Content-Length", head.size);
      return reply.type(image.contentType ?? "application/octet-stream").send(body);
    },
  );
}
