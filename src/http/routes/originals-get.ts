import { Type } from "typebox";
import { contentDisposition } from "../../domain/filename.ts";
import { originalPath } from "../../services/image-view.ts";
import { applyCacheHeaders, requestedRange, SANDBOX_CSP } from "../delivery-headers.ts";
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
          206: binaryContent("One byte range of the original (Range; If-Range honoured)", "image/*"),
          304: NotModified,
          404: problem("No such image, not ready, or private without a valid signature (never 403)"),
          416: problem("The range starts past the end of the original (Content-Range: bytes */size)"),
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
      reply.header("Accept-Ranges", "bytes");
      const lastModified = image.readyAt ?? image.updatedAt;
      if (applyCacheHeaders(request, reply, auth, etag, lastModified)) {
        return reply.code(304).send();
      }
      const range = requestedRange(request, etag, lastModified) ?? undefined;
      const { head, body, span } = await deps.delivery.openOriginal(auth, range);
      if (span) {
        reply.code(206).header("Content-Range", `bytes ${span.start}-${span.end}/${head.size}`);
        reply.header("Content-Length", span.end - span.start + 1);
      } else reply.header("Content-Length", head.size);
      return reply.type(image.contentType ?? "application/octet-stream").send(body);
    },
  );
}
