import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedWithin, rawConnect } from "../support/raw-http.ts";
import { type ServeChild, startServeChild } from "../support/serve-child.ts";

/**
 * Issue 12: nothing a client sends can crash imgup. Random and truncated bodies go to every route
 * of /openapi.json plus the embedded storage's upload endpoints, with and without an API key, to
 * an `imgup serve` child process (a crash is an exit the test sees). After each request: the
 * process is alive and answers /healthz; every answer to a body was a 4xx/5xx problem; no
 * connection outlives the configured timeouts.
 */
const BODY_TIMEOUT_MS = 500;
const GRACE_MS = 500;
// Only a real hang reaches this: the configured deadlines with generous slack.
const BOUND_MS = BODY_TIMEOUT_MS * 3 + 10_000;
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

interface Route {
  method: string;
  path: string;
}

type Ending = "whole" | "client-close" | "short-then-close" | "short-then-wait";
interface Case {
  route: Route;
  withKey: boolean;
  contentType: string;
  body: Buffer;
  ending: Ending;
}

const ACCEPTS_ANY = new Set(["post /v1/images", "post /v1/uploads"]);

const BOUNDARY = "fuzzBoundary7MA4YWxk";
const multipartType = `multipart/form-data; boundary=${BOUNDARY}`;

function part(name: string, body: Buffer | string, filename?: string, type?: string): Buffer {
  const disposition = `form-data; name="${name}"${filename ? `; filename="${filename}"` : ""}`;
  const head = `--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ""}\r\n`;
  return Buffer.concat([Buffer.from(head), Buffer.from(body), Buffer.from("\r\n")]);
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** Bodies by kind, each with the Content-Type it is sent as. */
const bodies: fc.Arbitrary<{ contentType: string; body: Buffer }> = fc.oneof(
  fc.record({
    contentType: fc.constantFrom(
      "application/octet-stream",
      "image/png",
      "image/jpeg",
      "text/plain",
      "application/json",
      "multipart/form-data",
      "",
    ),
    body: bytes(4096),
  }),
  // Invalid JSON.
  fc.record({
    contentType: fc.constant("application/json"),
    body: fc
      .constantFrom('{"a":', "[1,2", '{"size": 1e999999}', "nul", '{"__proto__":{"x":1}}', "\u0000{}")
      .map((s) => Buffer.from(s)),
  }),
  // JSON of wrong shapes (and occasionally of right-looking ones).
  fc.record({
    contentType: fc.constant("application/json"),
    body: fc
      .oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.record(
          {
            filename: fc.oneof(fc.string(), fc.integer()),
            contentType: fc.constantFrom("image/png", "image/jpeg", "text/html", ""),
            size: fc.oneof(fc.integer(), fc.double(), fc.string()),
            method: fc.constantFrom("put", "post", "multipart", "x"),
            visibility: fc.constantFrom("public", "private", 3),
            spec: fc.string(),
            parts: fc.array(fc.record({ partNumber: fc.integer(), etag: fc.string() }), { maxLength: 3 }),
          },
          { requiredKeys: [] },
        ),
      )
      .map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
  }),
  // Multipart with the right boundary: random fields, file parts, a bad tail.
  fc.record({
    contentType: fc.constant(multipartType),
    body: fc
      .tuple(
        fc.array(
          fc.tuple(
            fc.constantFrom("file", "key", "policy", "signature", "Content-Type", "visibility", "x"),
            bytes(2048),
            fc.option(fc.constantFrom("a.png", "b.jpg", ""), { nil: undefined }),
            fc.option(fc.constantFrom("image/png", "application/octet-stream", "text/plain"), {
              nil: undefined,
            }),
          ),
          { maxLength: 4 },
        ),
        fc.boolean(),
        bytes(200),
      )
      .map(([parts, closed, tail]) =>
        Buffer.concat([
          ...parts.map(([name, body, filename, type]) => part(name, body, filename, type)),
          closed ? Buffer.from(`--${BOUNDARY}--\r\n`) : Buffer.alloc(0),
          tail,
        ]),
      ),
  }),
  // A form with a file part large enough to be mid-file when a refusal stops the parser.
  fc.record({
    contentType: fc.constant(multipartType),
    body: fc
      .tuple(
        fc.subarray(["key", "policy", "signature", "Content-Type", "visibility"]),
        fc.integer({ min: 64 * 1024, max: 400 * 1024 }),
      )
      .map(([names, size]) =>
        Buffer.concat([
          ...names.map((name) => part(name, "x")),
          part("file", Buffer.alloc(size, 0x5a), "a.png", "image/png"),
          Buffer.from(`--${BOUNDARY}--\r\n`),
        ]),
      ),
  }),
  // Multipart whose declared boundary is not the one in the body, or is malformed.
  fc.record({
    contentType: fc.constantFrom(
      "multipart/form-data; boundary=other",
      "multipart/form-data; boundary=",
      `multipart/form-data; boundary="${"x".repeat(200)}"`,
    ),
    body: fc.constant(part("file", Buffer.alloc(3000, 1), "a.png", "image/png")),
  }),
);

function fillPath(path: string, id: string): string {
  return path.replace(/\{[^}]+\}/g, id).replace(/\*$/, "uploads/x/y");
}

function requestText(c: Case, apiKey: string, length: number, id: string): string {
  const headers = [
    `${c.route.method.toUpperCase()} ${fillPath(c.route.path, id)} HTTP/1.1`,
    "Host: fuzz",
    "Connection: close",
    `Content-Length: ${length}`,
  ];
  if (c.contentType) headers.push(`Content-Type: ${c.contentType}`);
  if (c.withKey) headers.push(`Authorization: Bearer ${apiKey}`);
  return `${headers.join("\r\n")}\r\n\r\n`;
}

describe("hostile requests to every route", () => {
  let serve: ServeChild;
  let routes: Route[];

  beforeAll(async () => {
    serve = await startServeChild({
      IMGUP_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      IMGUP_UPLOAD_RATE_GRACE_MS: String(GRACE_MS),
      IMGUP_UPLOAD_MIN_BYTES_PER_SEC: "2000",
      IMGUP_IDLE_TIMEOUT_MS: "5000",
      IMGUP_HEADERS_TIMEOUT_MS: "2000",
      // The fuzzer is one client: it must not be throttled into 429s that hide the routes.
      IMGUP_RATE_LIMIT_PER_SEC: "100000",
      IMGUP_RATE_LIMIT_BURST: "100000",
    });
    const doc = (await (await fetch(`${serve.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ["get", "post", "put", "patch", "delete"].includes(m))
        .map((method) => ({ method, path })),
    );
    for (const extra of [
      { method: "put", path: "/storage/*" },
      { method: "post", path: "/storage-post" },
    ]) {
      if (!routes.some((r) => r.method === extra.method && r.path === extra.path)) routes.push(extra);
    }
  }, 120_000);
  afterAll(async () => {
    await serve?.stop();
  });

  async function expectAlive(context: string) {
    const res = await fetch(`${serve.baseUrl}/healthz`).catch((err: Error) => err);
    expect(serve.exit(), `${context}\n${serve.output().slice(-4000)}`).toBeNull();
    expect(res instanceof Response ? res.status : String(res), context).toBe(200);
    // The crash guard is the last resort: an exception it had to catch is still a bug.
    expect(serve.lines.filter((l) => String(l.msg).startsWith("uncaught exception"))).toEqual([]);
  }

  async function send(c: Case, id: string): Promise<{ status: number | null; text: string }> {
    const ex = await rawConnect(serve.baseUrl);
    const declared = c.ending === "whole" ? c.body.length : c.body.length + 1000;
    ex.socket.write(requestText(c, serve.apiKey, declared, id));
    if (c.ending === "whole" || c.ending === "short-then-wait") ex.socket.write(c.body);
    else ex.socket.write(c.body.subarray(0, Math.floor(c.body.length / 2)));
    if (c.ending === "client-close" || c.ending === "short-then-close") {
      ex.socket.destroy();
      await ex.closed;
      return { status: null, text: "" };
    }
    // The server closes every exchange (Connection: close, or its timeouts): never a hang.
    await closedWithin(ex, BOUND_MS);
    return { status: ex.status(), text: ex.received() };
  }

  it("survives random, truncated and abandoned bodies on every route, answering each with a problem", async () => {
    expect(routes.length).toBeGreaterThan(10);
    const cases = fc.sample(
      fc.record({
        route: fc.constantFrom(...routes),
        withKey: fc.boolean(),
        body: bodies,
        ending: fc.constantFrom<Ending>("whole", "whole", "whole", "client-close", "short-then-close"),
        id: fc.constantFrom("img_0000000000000000000000", "x", "%2e%2e", "a".repeat(300)),
      }),
      { seed: SEED, numRuns: 300 },
    );
    // Every route at least once with each kind of ending, besides the random mix.
    const each: Array<{ c: Case; id: string }> = [];
    for (const route of routes)
      for (const ending of ["whole", "client-close", "short-then-close"] as const)
        each.push({
          c: {
            route,
            withKey: true,
            contentType: multipartType,
            body: part("file", Buffer.alloc(200 * 1024, 7), "a.png", "image/png"),
            ending,
          },
          id: "x",
        });
    const all = [...each, ...cases.map(({ id, body, ...rest }) => ({ c: { ...rest, ...body }, id }))];
    const statuses = new Map<number, number>();
    for (const { c, id } of all) {
      const context = `${c.route.method} ${c.route.path} key=${c.withKey} ${c.ending} ${c.contentType} ${c.body.length}B`;
      const res = await send(c, id);
      if (res.status !== null) {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const detail = `${context}\n${res.text.slice(0, 500)}`;
        // Only where random input can be a valid request may it succeed: a GET ignores its body,
        // a proxy upload takes any bytes (the worker judges them later), an intent may be well formed.
        const mayAccept = c.route.method === "get" || ACCEPTS_ANY.has(`${c.route.method} ${c.route.path}`);
        if (!mayAccept) expect(res.status, detail).toBeGreaterThanOrEqual(400);
        if (res.status >= 400) {
          expect(res.text.toLowerCase(), detail).toContain("content-type: application/problem+json");
          // A 500 is an error nothing handled: a bug even when the process survives it.
          expect(res.status, detail).not.toBe(500);
        }
      }
      await expectAlive(context);
    }
    console.log("hostile requests: statuses", Object.fromEntries(statuses), "of", all.length, "requests");
  }, 240_000);

  it("bodies shorter than their Content-Length are closed by the server on every route", async () => {
    // All at once: each waits for the server's body clock, not for the others.
    const results = await Promise.all(
      routes.map((route) =>
        send(
          {
            route,
            withKey: true,
            contentType: route.path.startsWith("/storage") ? multipartType : "application/json",
            body: Buffer.from('{"filename":"a.png"'),
            ending: "short-then-wait",
          },
          "x",
        ).then((res) => ({ route, res })),
      ),
    );
    for (const { route, res } of results) {
      if (res.status !== null && route.method !== "get") {
        expect(res.status, `${route.method} ${route.path}`).toBeGreaterThanOrEqual(400);
      }
    }
    await expectAlive("after the short bodies");
  }, 120_000);
});
