import type { Readable } from "node:stream";
import { Type } from "typebox";
import { binaryContent, NoSecurity, problem } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const SignedPutQuery = Type.Object({
  exp: Type.Optional(Type.String({ description: "expiry, unix seconds" })),
  sig: Type.Optional(Type.String({ description: "HMAC of the claims below" })),
  ct: Type.Optional(Type.String({ description: "the Content-Type the upload must send" })),
  len: Type.Optional(Type.String({ description: "the Content-Length the upload must send" })),
  sha256: Type.Optional(Type.String({ description: "the x-amz-checksum-sha256 it must send, if any" })),
  uploadId: Type.Optional(Type.String({ description: "multipart upload (a part URL)" })),
  partNumber: Type.Optional(Type.String({ description: "part number (a part URL)" })),
});

const FormFields = Type.Object(
  {
    key: Type.Optional(Type.String()),
    "Content-Type": Type.Optional(Type.String()),
    policy: Type.Optional(Type.String()),
    signature: Type.Optional(Type.String()),
    file: Type.Optional(Type.String({ format: "binary", description: "the last field" })),
  },
  // Listed as optional because Fastify checks this schema against the unread stream; all are needed.
  { description: "the `fields` of the intent, then the file as the last field" },
);

/**
 * The embedded storage's upload endpoints: what S3 would be for a direct upload. Only registered
 * with the local driver. Bodies are streamed to disk by the driver, never parsed here.
 */
export function registerLocalStorage(app: App, deps: HttpDeps): void {
  const store = deps.localStorage;
  if (!store) return;
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_request, payload, done) => done(null, payload));
    scope.put(
      "/storage/*",
      {
        schema: {
          operationId: "putStorageObject",
          tags: ["Embedded storage"],
          description:
            "Only with the local storage driver: where an intent's `upload.url` (method put) and multipart " +
            "part URLs point. The URL is the credential (signed, expiring), as with S3.",
          security: NoSecurity,
          summary: "Embedded storage: the presigned PUT URL of an upload or of a multipart part",
          params: Type.Object({ "*": Type.String({ description: "object key" }) }),
          querystring: SignedPutQuery,
          body: binaryContent("the object's bytes, with exactly the headers the intent gave", "*/*"),
          response: {
            200: Type.Null({ description: "Stored; the ETag header names it (keep it for a part)" }),
            403: problem("The signature, expiry, Content-Type or Content-Length does not match the URL"),
            "4xx": problem("The upload is refused (e.g. an object already exists, a checksum mismatch)"),
          },
        },
      },
      async (request, reply) => {
        const key = (request.params as { "*": string })["*"];
        const result = await store.handleUpload({
          method: "PUT",
          key,
          query: request.query as Record<string, string | undefined>,
          headers: request.headers,
          body: (request.body as Readable | undefined) ?? request.raw,
        });
        return reply.code(result.status).headers(result.headers).send();
      },
    );
    scope.post(
      "/storage-post",
      {
        schema: {
          operationId: "postStorageForm",
          tags: ["Embedded storage"],
          description:
            "Only with the local storage driver: where an intent's `upload.url` (method post) points, " +
            "as an S3 POST policy form would. The signed policy is the credential.",
          security: NoSecurity,
          summary: "Embedded storage: the browser form upload (method post) of an intent",
          body: { content: { "multipart/form-data": { schema: FormFields } } },
          response: {
            204: Type.Null({ description: "Stored; the ETag header names it" }),
            403: problem("The policy signature does not match, it expired, or a field breaks a condition"),
            "4xx": problem("The form is refused (malformed, too large, an object already exists)"),
          },
        },
      },
      async (request, reply) => {
        const result = await store.handlePostUpload({
          headers: request.headers,
          body: (request.body as Readable | undefined) ?? request.raw,
        });
        return reply.code(result.status).headers(result.headers).send();
      },
    );
  });
}
