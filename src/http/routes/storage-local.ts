import type { Readable } from "node:stream";
import { Type } from "typebox";
import { binaryContent, ProblemSchema } from "../schemas.ts";
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
          summary: "Embedded storage: the presigned PUT URL of an upload or of a multipart part",
          params: Type.Object({ "*": Type.String({ description: "object key" }) }),
          querystring: SignedPutQuery,
          body: binaryContent("the object's bytes, with exactly the headers the intent gave", "*/*"),
          response: {
            200: Type.Null({ description: "Stored; the ETag header names it (keep it for a part)" }),
            "4xx": ProblemSchema,
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
          summary: "Embedded storage: the browser form upload (method post) of an intent",
          body: { content: { "multipart/form-data": { schema: FormFields } } },
          response: {
            204: Type.Null({ description: "Stored; the ETag header names it" }),
            "4xx": ProblemSchema,
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
