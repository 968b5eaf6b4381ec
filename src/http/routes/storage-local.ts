import type { Readable } from "node:stream";
import type { App, HttpDeps } from "../types.ts";

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
    scope.put("/storage/*", async (request, reply) => {
      const key = (request.params as { "*": string })["*"];
      const result = await store.handleUpload({
        method: "PUT",
        key,
        query: request.query as Record<string, string | undefined>,
        headers: request.headers,
        body: (request.body as Readable | undefined) ?? request.raw,
      });
      return reply.code(result.status).headers(result.headers).send();
    });
    scope.post("/storage-post", async (request, reply) => {
      const result = await store.handlePostUpload({
        headers: request.headers,
        body: (request.body as Readable | undefined) ?? request.raw,
      });
      return reply.code(result.status).headers(result.headers).send();
    });
  });
}
