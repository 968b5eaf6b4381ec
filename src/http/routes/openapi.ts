import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import { type Static, Type } from "typebox";
import type { Config } from "../../config.ts";
import { addSharedSchemas, CORE_SCHEMAS, MALFORMED, NoSecurity } from "../schemas.ts";
import type { App } from "../types.ts";

const PACKAGE = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
  description?: string;
  license?: string;
};

const OpenApiDocument = Type.Object(
  {
    openapi: Type.String(),
    info: Type.Record(Type.String(), Type.Unknown()),
    paths: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true, description: "The OpenAPI 3.1 document" },
);

const TAGS = [
  { name: "Uploads", description: "Direct uploads: declare, send the bytes to the storage, complete" },
  { name: "Images", description: "Your images: read, list, change, delete, proxy upload, sign variant URLs" },
  {
    name: "Delivery",
    description: "Public (or signed) image URLs: originals, presets and on-the-fly variants; CDN-cacheable",
  },
  { name: "Admin", description: "API keys and owner purges (admin scope)" },
  { name: "Usage", description: "Your storage and image count against your quota" },
  {
    name: "Embedded storage",
    description:
      "The upload URLs of the local storage driver, standing in for S3 (use the URLs intents give)",
  },
  { name: "Storage events", description: "Object-created notifications from the storage" },
  { name: "Operations", description: "Probes, metrics and this document" },
  {
    name: "Webhooks",
    description: "Signed webhooks of image events to your app, their log and replay, and the pull feed",
  },
  {
    name: "Moderation",
    description:
      "The moderation hook's side: its signed callback and the signed URL to an original under review",
  },
];

/**
 * GET /openapi.json, generated from the routes' own schemas. Registered before every other route:
 * @fastify/swagger collects routes as they are added. A route that is not API (a page) sets
 * `schema: { hide: true }`.
 */
export async function registerOpenApi(app: App, deps: { config: Config }): Promise<void> {
  const { config } = deps;
  addSharedSchemas(app, CORE_SCHEMAS);
  await app.register(swagger, {
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, which is what TypeBox writes (type "null" included).
      openapi: "3.1.0",
      info: {
        title: "imgup",
        version: PACKAGE.version,
        description:
          `${PACKAGE.description ?? ""}\n\nErrors are RFC 9457 problems (application/problem+json) with a ` +
          "stable `code`. Unknown query parameters are ignored everywhere (cache-busters are fine).",
        license: { name: PACKAGE.license ?? "MIT", identifier: PACKAGE.license ?? "MIT" },
      },
      // Where this instance says it is reachable (IMGUP_PUBLIC_URL): the base of every URL it hands out.
      servers: [{ url: config.publicUrl, description: "this instance (IMGUP_PUBLIC_URL)" }],
      // Only the tags of routes this configuration serves.
      tags: TAGS.filter(
        (t) =>
          (t.name !== "Storage events" || config.events.webhookToken) &&
          (t.name !== "Embedded storage" || config.storage.driver === "local") &&
          (t.name !== "Moderation" || config.moderation.url !== undefined),
      ),
      components: { securitySchemes: securitySchemes(config) },
    },
    // Shared schemas land in components/schemas under their own $id (Image, Problem, …), which is
    // what names the types client generators write.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === "string" ? json.$id : `def-${i}`,
    },
    // Fastify writes a wildcard as `*`, which is no OpenAPI path parameter: name it.
    transform: ({ schema, url }) => {
      if (!url.endsWith("*")) return { schema, url };
      const params = schema?.params as { properties?: Record<string, unknown> } | undefined;
      const { "*": rest, ...others } = params?.properties ?? {};
      return {
        url: `${url.slice(0, -1)}:path`,
        schema: {
          ...schema,
          params: { ...params, properties: { ...others, path: rest }, required: ["path"] },
        },
      };
    },
  });
  app.get(
    "/openapi.json",
    {
      schema: {
        operationId: "getOpenApiDocument",
        tags: ["Operations"],
        summary: "This API's OpenAPI 3.1 document",
        description: "Generated from the routes themselves. The reference page at /docs renders it.",
        security: NoSecurity,
        response: { 200: OpenApiDocument, ...MALFORMED },
      },
    },
    // The generated document's own types are stricter than the schema, which only sketches it.
    async () => app.swagger() as unknown as Static<typeof OpenApiDocument>,
  );
}

function securitySchemes(config: Config) {
  return {
    bearer: {
      type: "http" as const,
      scheme: "bearer",
      description: "An API key (imgup keys create) or an HS256 JWT whose sub is the owner",
    },
    opsToken: {
      type: "http" as const,
      scheme: "bearer",
      description: "IMGUP_OPS_TOKEN, for operational detail",
    },
    ...(config.events.webhookToken
      ? {
          eventsBearer: {
            type: "http" as const,
            scheme: "bearer",
            description: "IMGUP_EVENTS_TOKEN, as a bearer token",
          },
          eventsToken: {
            type: "apiKey" as const,
            in: "query" as const,
            name: "token",
            description: "IMGUP_EVENTS_TOKEN, in the query (for senders that cannot set headers)",
          },
        }
      : {}),
  };
}
