/**
 * The moderation hook's HTTP client against a real local server: the signed call, the decision
 * read from the answer, and everything that is no decision (5xx, redirect, garbage, deadline,
 * nothing listening), and the job's own abort.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../client/index.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { newWebhookSecret } from "../../src/domain/webhook-signature.ts";
import { type ModerationRequest, ModerationUnavailableError } from "../../src/services/moderation.ts";
import { HttpModerationHook } from "../../src/services/moderation-http-hook.ts";

describe("moderation: the HTTP hook client against a real server", () => {
  let server: Server;
  let url: string;
  const got: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  let respond: (res: ServerResponse) => void = (res) =>
    res.writeHead(200, { "content-type": "application/json" }).end('{"decision":"hold"}');
  const secret = newWebhookSecret();
  const request: ModerationRequest = {
    imageId: newImageId(),
    ownerId: "alice",
    contentType: "image/jpeg",
    size: 10,
    width: 1,
    height: 1,
    sha256: "a".repeat(64),
    url: "http://imgup.test/x",
  };

  beforeEach(async () => {
    got.length = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        respond(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/moderate`;
  });
  afterEach(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );

  const client = (timeoutMs = 5000) => new HttpModerationHook({ url, secret, timeoutMs });

  it("POSTs the request signed like imgup's webhooks (the SDK verifies it) and reads the decision", async () => {
    expect(await client().review(request)).toEqual({ decision: "hold" });
    const [call] = got;
    expect(JSON.parse(call?.body ?? "")).toEqual(request);
    await expect(verifyWebhook(call?.body ?? "", call?.headers ?? {}, [secret])).resolves.toBeDefined();
    await expect(
      verifyWebhook(call?.body ?? "", call?.headers ?? {}, [newWebhookSecret()]),
    ).rejects.toThrow();
  });

  it("reject carries the reason; a missing reason gets a generic one", async () => {
    respond = (res) => res.writeHead(200).end('{"decision":"reject","reason":"weapons"}');
    expect(await client().review(request)).toEqual({ decision: "reject", reason: "weapons" });
    respond = (res) => res.writeHead(200).end('{"decision":"reject"}');
    expect(await client().review(request)).toEqual({ decision: "reject", reason: "rejected by moderation" });
  });

  it("5xx, a redirect, garbage and an unknown decision are no answer (ModerationUnavailableError)", async () => {
    for (const answer of [
      (res: ServerResponse) => res.writeHead(503).end("down"),
      (res: ServerResponse) => res.writeHead(302, { location: "http://example.com" }).end(),
      (res: ServerResponse) => res.writeHead(200).end("<html>"),
      (res: ServerResponse) => res.writeHead(200).end('{"decision":"maybe"}'),
    ]) {
      respond = answer;
      await expect(client().review(request)).rejects.toBeInstanceOf(ModerationUnavailableError);
    }
  });

  it("a hook that does not answer within the deadline is no answer; nothing listening neither", async () => {
    respond = () => undefined; // never answers
    await expect(client(200).review(request)).rejects.toThrow(/no answer within 200 ms/);
    const closed = new HttpModerationHook({ url: "http://127.0.0.1:1/x", secret, timeoutMs: 5000 });
    await expect(closed.review(request)).rejects.toBeInstanceOf(ModerationUnavailableError);
  });

  it("the job's own abort is not the hook's failure: it propagates as an abort", async () => {
    respond = () => undefined;
    const ac = new AbortController();
    const call = client(10_000).review(request, ac.signal);
    ac.abort(new Error("lease lost"));
    await expect(call).rejects.toThrow("lease lost");
  });
});
