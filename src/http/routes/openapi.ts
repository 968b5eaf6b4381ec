import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import { type Static, Type } from "typebox";
import type { App } from "../types.ts";

const PACKAGE = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
  description?: string;
};

const OpenApiDocument = Type.Object(
  {
    openapi: Type.String(),
    info: Type.Record(Type.String(), Type.Unknown()),
    paths: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true },
);

/**
 * GET /openapi.json, generated from the routes' own schemas. Registered before every other route:
 * @fastify/swagger collects routes as they are added. A route that is not API (a page) sets
 * `schema: { hide: true }`.
 */
export async function registerOpenApi(app: App): Promise<void> {
  await app.register(swagger, {
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, which is what TypeBox writes (type "null" included).
      openapi: "3.1.0",
      info: { title: "imgup", version: PACKAGE.version, description: PACKAGE.description },
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            description: "An API key (imgup keys create) or an HS256 JWT whose sub is the owner",
          },
        },
      },
    },
  });
  app.get(
    "/openapi.json",
    {
      schema: {
        summary: "This API's OpenAPI 3.1 document",
        response: { 200: OpenApiDocument },
      },
    },
    // The generated document's own types are stricter than the schema, which only sketches it.
    async () => app.swagger() as unknown as Static<typeof OpenApiDocument>,
  );
}
