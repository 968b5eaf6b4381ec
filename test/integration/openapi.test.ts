import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { RouteOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { IMAGE_STATUSES, REJECT_REASONS } from "../../src/domain/image.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { fetchDocument, type OpenApiDocument, operations } from "../support/openapi.ts";

// Every route Fastify registers, seen through an onRoute hook added the moment the instance exists:
// an independent list to hold the generated document against.
// Test workers keep their module cache between files (isolate: false): dropping it makes this
// file's app load the mocked fastify below, not the one an earlier file cached.
const seen = vi.hoisted(() => {
  vi.resetModules();
  return [] as RouteOptions[];
});
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

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Fastify's `/i/:imageId/:preset` and `/storage/*` as the document writes them. */
const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\*$/, "{path}");
const pathParams = (path: string) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
const pointer = (...parts: string[]) =>
  `#/${parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/")}`;
const PROBLEM_REF = { $ref: "#/components/schemas/Problem" };

describe("GET /openapi.json", () => {
  let run: Running;
  let doc: OpenApiDocument;
  const target = dbTargets()[0];

  beforeAll(async () => {
    if (!target) throw new Error("no database target");
    // Every optional route on: the storage webhook needs its token, the embedded storage is local.
    run = await startImgup(target.make(), {
      IMGUP_EVENTS_TOKEN: "openapi-test-token-0123456789",
      // One unauthenticated request per operation: more operations than the failure throttle's burst.
      IMGUP_AUTH_FAILURES_BURST: "1000",
    });
    doc = await fetchDocument(run.baseUrl);
  });
  afterAll(async () => {
    await run?.stop();
  });

  it("is an OpenAPI 3.1 document of this version, licensed, served from IMGUP_PUBLIC_URL, whose every schema compiles", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: "imgup", version: VERSION, license: { identifier: "MIT" } });
    expect(doc.servers).toEqual([expect.objectContaining({ url: run.config.publicUrl })]);
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(doc, "doc");
    let schemas = 0;
    for (const { path, method, op } of operations(doc)) {
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
    for (const name of Object.keys(doc.components?.schemas ?? {})) {
      expect(() => ajv.getSchema(`doc${pointer("components", "schemas", name)}`), name).not.toThrow();
    }
    expect(schemas).toBeGreaterThan(50);
  });

  it("names its shared schemas and refers to them instead of inlining them", () => {
    const names = Object.keys(doc.components?.schemas ?? {});
    for (const name of ["Image", "Problem", "ImageList", "ImageStatus", "RejectReason", "Visibility"]) {
      expect(names).toContain(name);
    }
    for (const name of ["UploadIntentRequest", "UploadIntent", "Upload", "UploadParts", "ApiKey"]) {
      expect(names).toContain(name);
    }
    const paths = JSON.stringify(doc.paths);
    // The image object is referred to, never spelt out again (its rejectDetail is unique to it).
    expect(paths).not.toContain('"rejectDetail"');
    const get = doc.paths["/v1/images/{id}"]?.get?.responses?.["200"]?.content?.["application/json"];
    expect(get?.schema).toEqual({ $ref: "#/components/schemas/Image" });
    // Nothing is left under a generated name (def-0…): every shared schema has its own.
    expect(names.filter((n) => /^def-\d+/.test(n))).toEqual([]);
    // And every named schema is used somewhere (the document's paths, or another schema).
    const whole = JSON.stringify(doc);
    for (const name of names) expect(whole, name).toContain(`"#/components/schemas/${name}"`);
  });

  it("declares status, rejectReason and visibility as the enums the domain has", () => {
    const schemas = doc.components?.schemas ?? {};
    expect(schemas.ImageStatus?.enum).toEqual([...IMAGE_STATUSES]);
    expect(schemas.RejectReason?.enum).toEqual([...REJECT_REASONS]);
    expect(schemas.Visibility?.enum).toEqual(["public", "private"]);
    const image = schemas.Image as { properties: Record<string, unknown> };
    expect(image.properties.status).toEqual({ $ref: "#/components/schemas/ImageStatus" });
    expect(image.properties.visibility).toEqual({ $ref: "#/components/schemas/Visibility" });
    expect(JSON.stringify(image.properties.rejectReason)).toContain('"#/components/schemas/RejectReason"');
  });

  it("documents every operation: operationId, tags, summary, description, real response descriptions", () => {
    const problems: string[] = [];
    const ids = new Set<string>();
    const tags = new Set(doc.tags?.map((t) => t.name));
    for (const tag of doc.tags ?? []) expect(tag.description, tag.name).toBeTruthy();
    for (const { path, method, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId || !/^[a-z][A-Za-z]+$/.test(op.operationId)) problems.push(`${where}: operationId`);
      else if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} repeated`);
      else ids.add(op.operationId);
      if (!op.summary) problems.push(`${where}: no summary`);
      if (!op.description) problems.push(`${where}: no description`);
      if (!op.tags?.length || !op.tags.every((t) => tags.has(t))) problems.push(`${where}: tags ${op.tags}`);
      const responses = Object.entries(op.responses ?? {});
      for (const [status, r] of responses) {
        if (!r.description || r.description === "Default Response")
          problems.push(`${where} ${status}: no description of its own`);
      }
      if (!responses.some(([status]) => /^[23]/.test(status))) problems.push(`${where}: no 2xx/3xx`);
      if (!responses.some(([status]) => /^4/.test(status))) problems.push(`${where}: no 4xx`);
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

  it("declares every error as application/problem+json with the Problem schema, what the server sends", async () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations(doc)) {
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        // A 503 of /readyz is its readiness report, not an error.
        if (!/^[45]/.test(status) || (path === "/readyz" && status === "503")) continue;
        if (
          JSON.stringify(r.content) !==
          JSON.stringify({ "application/problem+json": { schema: PROBLEM_REF } })
        )
          problems.push(`${method.toUpperCase()} ${path} ${status}: ${JSON.stringify(r.content)}`);
      }
    }
    expect(problems).toEqual([]);
    const res = await fetch(`${run.baseUrl}/v1/images/01890a5d-ac96-774b-bcce-b302099a8057`, {
      headers: { authorization: `Bearer ${run.alice}` },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
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
    expect(hidden.map((r) => r.url)).toContain("/docs");

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
      // A query parameter that is a credential is documented by its security scheme instead.
      const credentials = (op.security ?? [])
        .flatMap((s) => Object.keys(s))
        .map((name) => doc.components?.securitySchemes?.[name])
        .filter((s) => s?.in === "query")
        .map((s) => s?.name);
      const query = route.schema.querystring as { properties?: Record<string, unknown> } | undefined;
      for (const name of Object.keys(query?.properties ?? {})) {
        if (!credentials.includes(name) && !op.parameters?.some((p) => p.in === "query" && p.name === name)) {
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
    for (const { path, method } of operations(doc)) {
      if (!served.has(`${method} ${path}`))
        problems.push(`${method.toUpperCase()} ${path}: documented, not served`);
    }
    expect(problems).toEqual([]);
  });

  it("declares a credential on every operation that answers 401 without one, and security: [] on the public ones", async () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.security) {
        problems.push(`${where}: no security declared`);
        continue;
      }
      const url = `${run.baseUrl}${path.replace(/\{[^}]+\}/g, "01890a5d-ac96-774b-bcce-b302099a8057")}`;
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: { "content-type": "application/json" },
        body: ["post", "put", "patch"].includes(method) ? "{}" : undefined,
      });
      await res.arrayBuffer();
      const optional = op.security.length === 0 || op.security.some((s) => Object.keys(s).length === 0);
      if (res.status === 401 && optional)
        problems.push(`${where}: 401 without credentials, security optional`);
      if (res.status !== 401 && !optional)
        problems.push(`${where}: ${res.status} without credentials, security required`);
      if (path.startsWith("/v1/") && path !== "/v1/events/storage" && !op.security.some((s) => "bearer" in s))
        problems.push(`${where}: not the bearer scheme`);
    }
    expect(problems).toEqual([]);
    for (const path of ["/healthz", "/openapi.json", "/i/{imageId}/original", "/i/{imageId}/{preset}"]) {
      expect(doc.paths[path]?.get?.security, path).toEqual([]);
    }
  });
});
