import type { FastifyReply, FastifyRequest } from "fastify";
import { surrogateKey } from "../services/cdn-purge-request.ts";
import type { Authorized } from "../services/delivery.ts";
import type { ByteRange } from "../storage/object-store.ts";

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
  if (auth.privateTtlSeconds === null) {
    // One key per image on every cacheable answer, so one purge covers all its URLs (docs/cdn.md):
    // Surrogate-Key for Varnish and Fastly, Cache-Tag for Cloudflare.
    const key = surrogateKey(auth.image.id);
    reply.header("Surrogate-Key", key);
    reply.header("Cache-Tag", key);
  }
  const inm = request.headers["if-none-match"];
  return inm?.split(",").some((t) => t.trim().replace(/^W\//, "") === etag || t.trim() === "*") ?? false;
}

/**
 * The Range a GET asked for, when it is to be honoured: one byte range (several are answered
 * whole, as RFC 9110 allows), and only if If-Range, when sent, still names this representation.
 */
export function requestedRange(request: FastifyRequest, etag: string, lastModified: Date): ByteRange | null {
  const header = request.headers.range;
  if (typeof header !== "string") return null;
  const ifRange = request.headers["if-range"];
  if (typeof ifRange === "string") {
    // An entity tag matches only strongly; a date only exactly (the HTTP-date we sent).
    const current = ifRange.startsWith('"') ? ifRange === etag : ifRange === lastModified.toUTCString();
    if (!current) return null;
  }
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  if (m[2] === "") return { start };
  const end = Number(m[2]);
  return end < start ? null : { start, end };
}
