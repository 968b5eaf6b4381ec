import type { FastifyReply, FastifyRequest } from "fastify";
import type { Authorized } from "../services/delivery.ts";

export const IMMUTABLE = "public, max-age=31536000, immutable";
/** Originals may be anything a browser could render; never let one run as a document. */
export const SANDBOX_CSP = "default-src 'none'; sandbox";

/** Cache headers shared by originals and variants; true when the client's copy is current (send 304). */
export function applyCacheHeaders(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: Authorized,
  etag: string,
  lastModified: Date,
): boolean {
  reply.header("ETag", etag);
  reply.header("Last-Modified", lastModified.toUTCString());
  reply.header("X-Content-Type-Options", "nosniff");
  reply.header(
    "Cache-Control",
    auth.privateTtlSeconds === null ? IMMUTABLE : `private, max-age=${auth.privateTtlSeconds}`,
  );
  const inm = request.headers["if-none-match"];
  return inm?.split(",").some((t) => t.trim().replace(/^W\//, "") === etag || t.trim() === "*") ?? false;
}
