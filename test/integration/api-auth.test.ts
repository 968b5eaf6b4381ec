import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const EVENTS_TOKEN = "events-token-0123456789abcdef";

type OpenApi = { paths: Record<string, Record<string, { security?: unknown[] }>> };

/**
 * Authentication is the default for /v1 and comes before the body is read: every route answers 401
 * to an anonymous request whatever its body, and an address that keeps failing is throttled.
 */
describe("authentication of /v1", () => {
  let run: Running;
  beforeAll(async () => {
    run = await startImgup(db.make(), {
      IMGUP_EVENTS_TOKEN: EVENTS_TOKEN,
      IMGUP_TRUST_PROXY: "127.0.0.1",
      IMGUP_AUTH_FAILURES_PER_SEC: "1",
      IMGUP_AUTH_FAILURES_BURST: "3",
    });
  });
  afterAll(async () => run?.stop());

  it("answers 401 on every /v1 route without credentials, before looking at the body", async () => {
    const doc = (await (await fetch(`${run.baseUrl}/openapi.json`)).json()) as OpenApi;
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ path, method: method.toUpperCase() })),
    );
    const v1 = routes.filter((r) => r.path.startsWith("/v1/"));
    expect(v1.length).toBeGreaterThan(12);
    let n = 0;
    for (const { path, method } of v1) {
      const url = `${run.baseUrl}${path.replace(/\{[^}]+\}/g, "00000000-0000-7000-8000-000000000000")}`;
      // A body no schema accepts: 400 would tell an anonymous caller about the schema.
      const init: RequestInit = { method, headers: { "x-forwarded-for": `198.51.100.${n++}` } };
      if (method !== "GET" && method !== "DELETE") {
        init.body = '{"not": "what this route takes"';
        init.headers = { ...init.headers, "content-type": "application/json" };
      }
      const res = await fetch(url, init);
      const body = (await res.json()) as { code?: string };
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(body.code, `${method} ${path}`).toMatch(/^(unauthenticated|invalid_token)$/);
    }
  });

  it("throttles failed attempts per client address (as the trusted proxy names it) before any lookup", async () => {
    const attempt = (ip: string, key: string) =>
      fetch(`${run.baseUrl}/v1/images`, {
        headers: { authorization: `Bearer ${key}`, "x-forwarded-for": ip },
      });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await attempt("203.0.113.7", `imgup_guess${i}`)).status);
    // The burst of 3 failures is 401; the bucket drains at 1/s, so a few more may pass on a slow machine.
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses).toContain(429);
    const throttled = await attempt("203.0.113.7", "imgup_guess-more");
    if (throttled.status === 429) expect(throttled.headers.get("retry-after")).toBe("1");
    // Another client behind the same proxy has a budget of its own, and a valid key always works.
    expect((await attempt("203.0.113.8", "imgup_other")).status).toBe(401);
    expect((await attempt("203.0.113.9", run.alice)).status).toBe(200);
  });

  it("keeps the storage-event webhook on its own token, checked before the body", async () => {
    const res = await fetch(`${run.baseUrl}/v1/events/storage?token=wrong`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{broken",
    });
    expect(res.status).toBe(401);
    const ok = await fetch(`${run.baseUrl}/v1/events/storage?token=${EVENTS_TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Records: [] }),
    });
    expect(ok.status).toBe(200);
  });
});
