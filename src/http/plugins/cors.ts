import cors, { type FastifyCorsOptions } from "@fastify/cors";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CorsSettings } from "../../config.ts";
import type { App } from "../types.ts";

/** The request headers a browser may send: the API's, and every one an upload URL may pin. */
export const CORS_ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "content-md5",
  "idempotency-key",
  "if-none-match",
  "if-match",
  "if-modified-since",
  "if-range",
  "range",
  "x-request-id",
  "x-amz-checksum-sha256",
  "x-amz-checksum-algorithm",
  "x-amz-sdk-checksum-algorithm",
  "x-amz-content-sha256",
  "x-amz-date",
  "x-amz-security-token",
  "x-amz-user-agent",
];

/** Response headers a browser script may read: what the SDK and app code look at. */
export const CORS_EXPOSED_HEADERS = [
  "ETag",
  "Location",
  "Retry-After",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "Idempotent-Replayed",
  "X-Request-Id",
  "Content-Disposition",
  "Content-Range",
  "Accept-Ranges",
];

/** Which CORS policy a path falls under; null: none (the demo page, health, metrics, docs). */
export type CorsArea = "api" | "storage" | "delivery";

export function corsAreaOf(url: string): CorsArea | null {
  const path = url.split("?")[0] ?? url;
  if (path === "/v1" || path.startsWith("/v1/")) return "api";
  if (path.startsWith("/storage/") || path === "/storage-post") return "storage";
  if (path.startsWith("/i/")) return "delivery";
  return null;
}

const METHODS: Record<CorsArea, string[]> = {
  api: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
  storage: ["PUT", "POST"],
  delivery: ["GET", "HEAD"],
};

/**
 * CORS with @fastify/cors, per area: the API and the embedded storage's upload endpoints answer
 * the named origins only (the Authorization header is sent explicitly, never cookies, so no
 * credentials mode); public delivery answers the named origins, or `*` when configured so, which
 * lets `<img crossorigin>` be drawn into a canvas. A disallowed origin gets no
 * Access-Control-Allow-Origin (the browser blocks the read) and the request is processed as usual.
 * Registered before authentication: a preflight carries no credentials.
 */
export async function registerCors(app: App, settings: CorsSettings): Promise<void> {
  // Built once: the delegator runs on every request.
  const policies = Object.fromEntries(
    (Object.keys(METHODS) as CorsArea[]).map((area) => {
      const origins = area === "delivery" ? settings.deliveryOrigins : settings.apiOrigins;
      const policy: FastifyCorsOptions = {
        origin: origins === "*" ? "*" : origins.length > 0 ? origins : false,
        methods: METHODS[area],
        allowedHeaders: CORS_ALLOWED_HEADERS,
        exposedHeaders: CORS_EXPOSED_HEADERS,
        maxAge: 600,
        credentials: false,
        strictPreflight: false,
      };
      return [area, policy];
    }),
  ) as Record<CorsArea, FastifyCorsOptions>;
  const none: FastifyCorsOptions = { origin: false };
  const optionsFor = (request: FastifyRequest): FastifyCorsOptions => {
    const area = corsAreaOf(request.url);
    // A plain OPTIONS (no Origin or no requested method) is not a preflight: methods.ts answers it.
    const preflightLike =
      request.method !== "OPTIONS" ||
      (request.headers.origin !== undefined &&
        request.headers["access-control-request-method"] !== undefined);
    return area === null || !preflightLike ? none : policies[area];
  };
  // Routes whose answer does not depend on the Origin skip the plugin's per-request hook (route
  // config `cors: false`): on a cached hit its resolution and option normalisation were a fifth of
  // the CPU. An area no origin may call is answered as if CORS were not there; public delivery open
  // to every origin gets its two fixed headers from a route hook. Preflights still go through the
  // plugin's catch-all OPTIONS route. Only routes registered after this see the hook.
  const closed: Record<CorsArea, boolean> = {
    api: settings.apiOrigins.length === 0,
    storage: settings.apiOrigins.length === 0,
    delivery: settings.deliveryOrigins !== "*" && settings.deliveryOrigins.length === 0,
  };
  const exposed = CORS_EXPOSED_HEADERS.join(", ");
  const anyOrigin = (_request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    reply.header("access-control-allow-origin", "*");
    reply.header("access-control-expose-headers", exposed);
    done();
  };
  app.addHook("onRoute", (route) => {
    const methods = [route.method].flat();
    if (route.url.includes("*") || methods.includes("OPTIONS")) return;
    const area = corsAreaOf(route.url);
    if (area === null || closed[area]) {
      route.config = { ...route.config, cors: false } as typeof route.config;
    } else if (area === "delivery" && settings.deliveryOrigins === "*") {
      route.config = { ...route.config, cors: false } as typeof route.config;
      route.onRequest = [anyOrigin, ...[route.onRequest ?? []].flat()] as typeof route.onRequest;
    }
  });
  // The callback form: a promise per request is measurable on the intents path.
  await app.register(cors, {
    delegator: (
      request: FastifyRequest,
      callback: (err: Error | null, options: FastifyCorsOptions) => void,
    ) => callback(null, optionsFor(request)),
  });

  // @fastify/cors adds Vary: Origin to every answer of a per-request policy. It matters only where
  // Access-Control-Allow-Origin depends on Origin; elsewhere it would split CDN caches for nothing.
  const fixedArea: Record<CorsArea, boolean> = {
    api: settings.apiOrigins.length === 0,
    storage: settings.apiOrigins.length === 0,
    delivery: settings.deliveryOrigins === "*" || settings.deliveryOrigins.length === 0,
  };
  app.addHook("onSend", (request, reply, payload, done) => {
    const area = corsAreaOf(request.url);
    if (area === null || fixedArea[area]) removeVary(reply, "origin");
    done(null, payload);
  });
}

function removeVary(reply: FastifyReply, name: string): void {
  const vary = reply.getHeader("vary");
  if (typeof vary !== "string") return;
  const kept = vary
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v && v.toLowerCase() !== name);
  if (kept.length === 0) reply.removeHeader("vary");
  else reply.header("vary", kept.join(", "));
}

/** Adds a field to Vary, keeping what is there (Fastify's header() would replace it). */
export function appendVary(reply: FastifyReply, name: string): void {
  const vary = reply.getHeader("vary");
  const present = typeof vary === "string" ? vary.split(",").map((v) => v.trim()) : [];
  if (present.some((v) => v.toLowerCase() === name.toLowerCase() || v === "*")) return;
  reply.header("vary", [...present.filter(Boolean), name].join(", "));
}
