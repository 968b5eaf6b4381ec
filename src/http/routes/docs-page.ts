import swaggerUi from "@fastify/swagger-ui";
import type { Config } from "../../config.ts";
import type { App } from "../types.ts";

export const DOCS_PREFIX = "/docs";

/**
 * GET /docs: the API reference (Swagger UI) over this instance's own OpenAPI document. Every asset
 * is served from here (/docs/static/…), never a CDN, so the page works offline and behind a strict
 * CSP. Its routes are hidden from the document: they are a page, not API.
 */
export async function registerApiReference(app: App, deps: { config: Config }): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: apiReferencePolicy(deps.config),
    theme: { title: "imgup API reference" },
    uiConfig: {
      deepLinking: true,
      displayOperationId: true,
      defaultModelsExpandDepth: 1,
    },
    // Already the default (null): Swagger UI must never send the document to validator.swagger.io.
    validatorUrl: false,
  });
}

/**
 * Swagger UI needs only its own scripts and styles, data: images (its icons) and requests to this
 * instance (the document, and "Try it out" against the public URL the document names). Inline
 * styles only: Swagger UI adds a <style> element of its own (a hash would break with each Swagger
 * UI release); scripts stay 'self'.
 */
export function apiReferencePolicy(config: Config): string {
  const self = [...new Set(["'self'", new URL(config.publicUrl).origin])].join(" ");
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    `connect-src ${self}`,
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}
