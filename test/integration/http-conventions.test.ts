import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

describe("HTTP conventions: methods", () => {
  let run: Running;
  let alice: Api;

  beforeAll(async () => {
    run = await startImgup(db.make(), { IMGUP_CORS_ORIGINS: "http://app.test" });
    alice = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  it("answers a known path asked with another method 405 with Allow, an unknown path 404", async () => {
    const put = await alice.request("PUT", "/v1/images");
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(put.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(put.body).toMatchObject({ status: 405, code: "method_not_allowed" });

    const item = await alice.request("POST", "/v1/images/img_00000000000000000000000000");
    expect(item.status).toBe(405);
    expect(item.headers.get("allow")).toBe("GET, HEAD, PATCH, DELETE, OPTIONS");

    const storage = await fetch(`${run.baseUrl}/storage/some/key`, { method: "GET" });
    expect(storage.status).toBe(405);
    expect(storage.headers.get("allow")).toBe("PUT, OPTIONS");

    const delivery = await fetch(`${run.baseUrl}/i/img_00000000000000000000000000/thumb`, {
      method: "DELETE",
    });
    expect(delivery.status).toBe(405);
    expect(delivery.headers.get("allow")).toBe("GET, HEAD, OPTIONS");

    expect((await alice.request("GET", "/v1/nonesuch")).status).toBe(404);
    expect((await alice.request("DELETE", "/nonesuch/at/all")).status).toBe(404);
  });

  it("answers a plain OPTIONS with Allow, and a CORS preflight as a preflight", async () => {
    const plain = await fetch(`${run.baseUrl}/v1/images`, { method: "OPTIONS" });
    expect(plain.status).toBe(204);
    expect(plain.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    const preflight = await fetch(`${run.baseUrl}/v1/images`, {
      method: "OPTIONS",
      headers: { origin: "http://app.test", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.test");
    expect((await fetch(`${run.baseUrl}/nonesuch`, { method: "OPTIONS" })).status).toBe(404);
  });
});
