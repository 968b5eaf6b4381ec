import { describe, expect, it } from "vitest";
import { createClient } from "./client.ts";

describe("createClient's fetch option", () => {
  it("calls a custom fetch as a plain function (a browser's fetch refuses any other `this`)", async () => {
    const thisValues: unknown[] = [];
    // Like window.fetch: "Illegal invocation" unless called without a receiver.
    const strictFetch = function (this: unknown) {
      thisValues.push(this);
      if (this !== undefined && this !== globalThis) throw new TypeError("Illegal invocation");
      return Promise.resolve(
        new Response(JSON.stringify({ items: [], nextCursor: null }), {
          headers: { "content-type": "application/json" },
        }),
      );
    };
    const client = createClient({ baseUrl: "https://imgup.example", token: "k", fetch: strictFetch });
    await expect(client.listImages()).resolves.toEqual({ items: [], nextCursor: null });
    expect(thisValues).toEqual([undefined]);
  });
});
