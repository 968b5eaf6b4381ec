import { describe, expect, it } from "vitest";
import { NetworkError } from "./errors.ts";
import { Api } from "./http.ts";

/** A fetch that plays a script: a Response, or an error to throw, per call. */
function scripted(steps: Array<() => Response>) {
  let calls = 0;
  const fetchFn = (async () => {
    const step = steps[calls++];
    if (!step) throw new Error("more calls than scripted");
    return step();
  }) as typeof fetch;
  return { fetchFn, calls: () => calls };
}

const ok = () =>
  new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json" } });
const refused = () => {
  // What fetch throws for a CORS refusal or a dead server alike.
  throw new TypeError("Failed to fetch");
};

describe("Api network failures", () => {
  it("fails at once with a hint when imgup never answered (CORS or unreachable)", async () => {
    const script = scripted([refused, refused, refused]);
    const api = new Api({ baseUrl: "https://imgup.example", token: "k", fetch: script.fetchFn, retries: 4 });
    const err = await api.request("GET", "/v1/images").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).code).toBe("network_error");
    expect((err as NetworkError).unreachable).toBe(true);
    expect((err as NetworkError).message).toMatch(/https:\/\/imgup\.example\/v1\/images.*CORS/);
    expect(script.calls()).toBe(1);
  });

  it("retries a failed fetch once imgup has answered", async () => {
    const script = scripted([ok, refused, refused, ok]);
    const api = new Api({ baseUrl: "https://imgup.example", token: "k", fetch: script.fetchFn, retries: 4 });
    await api.request("GET", "/v1/images");
    await expect(api.request("GET", "/v1/images")).resolves.toMatchObject({ status: 200 });
    expect(script.calls()).toBe(4);
  });

  it("still gives up after `retries` when the network keeps failing", async () => {
    const script = scripted([ok, refused, refused]);
    const api = new Api({ baseUrl: "", token: "k", fetch: script.fetchFn, retries: 1 });
    await api.request("GET", "/v1/images");
    const err = await api.request("GET", "/v1/images").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "network_error", unreachable: false });
    expect(script.calls()).toBe(3);
  });
});
