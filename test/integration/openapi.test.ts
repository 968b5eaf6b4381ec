import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { RouteOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

// Every route Fastify registers, seen through an onRoute hook added the moment the instance exists:
// an independent list to hold the generated document against.
const seen = vi.hoisted(() => [] as RouteOptions[]);
vi.mock("fastify", async (importOriginal) => {
  const real = await importOriginal<typeof import("fastify")>();
  const factory = ((opts: Parameters<typeof real.default>[0]) => {
    const app = real.default(opts);
    app.addHook("onRoute", (route) => {
      seen.push(route as unknown as RouteOptions);
    });
    return app;
  }) as typeof real.default;
  return { ...real, default: factory };
});

interface Operation {
  parameters?: Array<{ in: string; name: string; schema?: unknown; required?: boolean }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  security?: Array<Record<string, unknown>>;
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Fastify's `/i/:imageId/:preset` and `/storage/*` as OpenAPI writes them. */
const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\*/g, "{*}");
const pathParams = (path: string) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
const pointer = (...parts: string[]) =>
  `#/${parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/")}`;

describe("GET /openapi.json", () => {
  let run: Running;
  let doc: Document;
  const target = dbTargets()[0];

  beforeAll(async () => {
    if (!target) throw new Error("no database target");
    // Every optional route on: the storage webhook needs its token, the embedded storage is local.
    run = await startImgup(target.make(), { IMGUP_EVENTS_TOKEN: "openapi-test-token-0123456789" });
    const res = await fetch(`${run.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    doc = (await res.json()) as Document;
  }, 60_000);
  afterAll(async () => {
    await run?.stop();
  });

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, op]) => ({ path, method, op })),
    );

  it("is an OpenAPI 3.1 document of this version whose every schema compiles", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: "imgup", version: VERSION });
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(doc, "doc");
    let schemas = 0;
    for (const { path, method, op } of operations()) {
      expect(path.startsWith("/"), path).toBe(true);
      for (const name of op.security?.flatMap((s) => Object.keys(s)) ?? []) {
        expect(doc.components?.securitySchemes?.[name], `${method} ${path}: security ${name}`).toBeDefined();
      }
      const located: string[] = [];
      op.parameters?.forEach((p, i) => {
        if (p.schema) located.push(pointer("paths", path, method, "parameters", String(i), "schema"));
      });
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (media.schema)
          located.push(pointer("paths", path, method, "requestBody", "content", type, "schema"));
      }
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        expect(typeof response.description, `${method} ${path} ${status}: description`).toBe("string");
        for (const [type, media] of Object.entries(response.content ?? {})) {
          if (media.schema)
            located.push(pointer("paths", path, method, "responses", status, "content", type, "schema"));
        }
      }
      for (const ref of located) {
        expect(() => ajv.getSchema(`doc${ref}`), ref).not.toThrow();
        schemas++;
      }
    }
    expect(schemas).toBeGreaterThan(50);
  });

  it("documents, for every operation, a success response and what the request carries", () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      const success = Object.entries(op.responses ?? {}).filter(([status]) => /^[23]/.test(status));
      // A body-less success (204, 304) says so in its description; @fastify/swagger's placeholder
      // for a route without any response schema is "Default Response" with no content.
      const documented = success.filter(
        ([, r]) =>
          Object.values(r.content ?? {}).some((m) => m.schema) ||
          (r.content === undefined && r.description !== "Default Response"),
      );
      if (documented.length === 0) problems.push(`${where}: no documented 2xx/3xx response`);
      for (const name of pathParams(path)) {
        if (!op.parameters?.some((p) => p.in === "path" && p.name === name && p.schema)) {
          problems.push(`${where}: path parameter ${name} undocumented`);
        }
      }
      if (["post", "put", "patch"].includes(method)) {
        const media = Object.values(op.requestBody?.content ?? {});
        if (!media.some((m) => m.schema)) problems.push(`${where}: no request body schema`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("lists every route Fastify has, except the hidden ones, with the schemas the route declares", () => {
    const routes = seen.flatMap((route) =>
      (Array.isArray(route.method) ? route.method : [route.method]).map((method) => ({
        method: method.toLowerCase(),
        url: route.url,
        schema: (route.schema ?? {}) as Record<string, unknown>,
      })),
    );
    // HEAD routes Fastify adds beside each GET are not operations of their own.
    const gets = new Set(routes.filter((r) => r.method === "get").map((r) => r.url));
    const api = routes.filter((r) => r.schema.hide !== true && !(r.method === "head" && gets.has(r.url)));
    const hidden = routes.filter((r) => r.schema.hide === true);
    expect(api.length).toBeGreaterThan(15);

    const problems: string[] = [];
    for (const route of api) {
      const where = `${route.method.toUpperCase()} ${route.url}`;
      const op = doc.paths[toOpenApiPath(route.url)]?.[route.method];
      if (!op) {
        problems.push(`${where}: missing from the document`);
        continue;
      }
      if (/[:*]/.test(route.url) && !route.schema.params) problems.push(`${where}: no params schema`);
      if (["post", "put", "patch"].includes(route.method) && !route.schema.body) {
        problems.push(`${where}: no body schema`);
      }
      if (!route.schema.response) problems.push(`${where}: no response schema`);
      const query = route.schema.querystring as { properties?: Record<string, unknown> } | undefined;
      for (const name of Object.keys(query?.properties ?? {})) {
        if (!op.parameters?.some((p) => p.in === "query" && p.name === name)) {
          problems.push(`${where}: query parameter ${name} missing from the document`);
        }
      }
    }
    for (const route of hidden) {
      if (doc.paths[toOpenApiPath(route.url)]?.[route.method])
        problems.push(`${route.url}: hidden but listed`);
    }
    // And nothing in the document that Fastify does not serve.
    const served = new Set(api.map((r) => `${r.method} ${toOpenApiPath(r.url)}`));
    for (const { path, method } of operations()) {
      if (!served.has(`${method} ${path}`))
        problems.push(`${method.toUpperCase()} ${path}: documented, not served`);
    }
    expect(problems).toEqual([]);
  });

  it("declares the bearer scheme on every /v1 operation that answers 401 without credentials", async () => {
    // Routes that validate the body before authenticating answer 400 here and are not judged.
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      if (!path.startsWith("/v1/")) continue;
      const url = `${run.baseUrl}${path.replace(/\{[^}]+\}/g, "01890a5d-ac96-774b-bcce-b302099a8057")}`;
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: { "content-type": "application/json" },
        body: ["post", "put", "patch"].includes(method) ? "{}" : undefined,
      });
      await res.arrayBuffer();
      const bearer = op.security?.some((s) => "bearer" in s) ?? false;
      if (res.status === 401 && !bearer)
        problems.push(`${method.toUpperCase()} ${path}: 401 without credentials, no security`);
    }
    expect(problems).toEqual([]);
  });
});
