import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Type } from "typebox";
import type { Config } from "../../config.ts";
import { ERRORS } from "../../domain/errors.ts";
import type { Presets } from "../../domain/presets.ts";
import type { App, HttpDeps } from "../types.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
};
/** web/build.ts names assets `name-HASH.ext`; only those may be cached forever. */
const HASHED = /-[A-Z0-9]{8,}\.[a-z0-9]+(\.map)?$/;
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/**
 * GET / (the demo uploader page) and GET /assets/{name}, from the bundle web/build.ts writes.
 * Hidden from the OpenAPI document: it is a page, not part of the API.
 */
export function registerDemoPage(app: App, deps: HttpDeps): void {
  const { enabled, dir } = deps.config.demoPage;
  if (!enabled) return;
  const csp = contentSecurityPolicy(deps.config);
  const presetsMeta = presetGeometryMeta(deps.config.delivery.presets);

  app.get("/", { schema: { hide: true } }, async (request, reply) => {
    const file = await readFile(path.join(dir, "index.html"), "utf8").catch(() => null);
    const html = file?.replace("</head>", `${presetsMeta}\n  </head>`);
    reply.header("Content-Security-Policy", csp).header("Referrer-Policy", "no-referrer");
    // The page's asset names change with their content; the page itself must be revalidated.
    reply.header("Cache-Control", "no-cache");
    if (!html) return reply.type("text/html; charset=utf-8").send(NOT_BUILT);
    const etag = `"${createHash("sha256").update(html).digest("base64url").slice(0, 27)}"`;
    reply.header("ETag", etag);
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type("text/html; charset=utf-8").send(html);
  });

  app.get(
    "/assets/:name",
    { schema: { hide: true, params: Type.Object({ name: Type.String({ maxLength: 128 }) }) } },
    async (request, reply) => {
      const { name } = request.params;
      const type = CONTENT_TYPES[path.extname(name)];
      // The pattern admits no separator, so the name cannot leave the assets directory.
      const body = ASSET_NAME.test(name) && type ? await readAsset(dir, name) : null;
      if (!body) throw ERRORS.notFound("no such asset");
      reply.header(
        "Cache-Control",
        HASHED.test(name) ? "public, max-age=31536000, immutable" : "public, max-age=300",
      );
      return reply.type(type as string).send(body);
    },
  );
}

/**
 * The presets' sizes, for the page's srcset: image URLs name a preset, not its size, and presets
 * are configurable (IMGUP_PRESETS). Only geometry; the page picks a variant per screen density.
 */
export function presetGeometryMeta(presets: Presets): string {
  const geometry = Object.fromEntries(
    Object.entries(presets).map(([name, spec]) => [
      name,
      { w: spec.width, h: spec.height, fit: spec.fit, dpr: spec.dpr },
    ]),
  );
  const content = JSON.stringify(geometry).replaceAll("&", "&amp;").replaceAll('"', "&quot;");
  return `<meta name="imgup-presets" content="${content.replaceAll("<", "&lt;").replaceAll(">", "&gt;")}" />`;
}

async function readAsset(dir: string, name: string): Promise<Buffer | null> {
  return readFile(path.join(dir, "assets", name)).catch(() => null);
}

/**
 * Only the page's own scripts and styles. Uploads go to imgup (embedded storage) or straight to
 * the bucket, so connect-src names the storage's origin; images come from imgup's /i/ (its public
 * URL), and placeholders are data: URLs. The SDK hashes with WebAssembly: 'wasm-unsafe-eval'.
 */
export function contentSecurityPolicy(config: Config): string {
  const self = ["'self'", new URL(config.publicUrl).origin];
  const connect = [...self, ...storageOrigins(config)];
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    `img-src ${[...self, "blob:", "data:"].join(" ")}`,
    `connect-src ${[...new Set(connect)].join(" ")}`,
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function storageOrigins(config: Config): string[] {
  if (config.storage.driver !== "s3") return [];
  const { presignEndpoint, endpoint, forcePathStyle } = config.storage.s3;
  const base = presignEndpoint ?? endpoint;
  // AWS itself: virtual-hosted or path-style, regional or global; all under amazonaws.com.
  if (!base) return ["https://*.amazonaws.com"];
  const url = new URL(base);
  if (forcePathStyle) return [url.origin];
  // Virtual-hosted style puts the bucket in front of the endpoint's host.
  return [url.origin, `${url.protocol}//*.${url.host}`];
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imgup</title></head>
<body><h1>imgup</h1><p>The demo page is not built. Run <code>npm run build</code> (or <code>npm start</code>,
which builds it first), then reload.</p><p>The API is at <code>/v1/</code>.</p></body></html>
`;
