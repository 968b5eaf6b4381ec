import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { isAppError } from "../domain/errors.ts";
import { HttpWebhookTransport } from "./http-transport.ts";
import { webhookUrlCheck } from "./url-check.ts";

const resolveTo = (address: string) => async () => [{ address, family: address.includes(":") ? 6 : 4 }];

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return isAppError(err) ? err.code : String(err);
  }
}

describe("webhook URL checks (SSRF)", () => {
  const strict = webhookUrlCheck({ allowPrivate: false, resolve: resolveTo("93.184.216.34") });

  it("refuses private, loopback and link-local addresses at registration unless allowed", async () => {
    expect(await code(webhookUrlCheck({ allowPrivate: false })("http://127.0.0.1:9/x"))).toBe(
      "webhook_url_not_allowed",
    );
    expect(await code(webhookUrlCheck({ allowPrivate: false })("http://[::1]/x"))).toBe(
      "webhook_url_not_allowed",
    );
    expect(await code(webhookUrlCheck({ allowPrivate: false })("http://169.254.169.254/latest"))).toBe(
      "webhook_url_not_allowed",
    );
    const rebinding = webhookUrlCheck({ allowPrivate: false, resolve: resolveTo("10.0.0.5") });
    expect(await code(rebinding("https://hooks.example/x"))).toBe("webhook_url_not_allowed");
    expect(await code(webhookUrlCheck({ allowPrivate: true })("http://127.0.0.1:9/x"))).toBe("ok");
    expect(await code(strict("https://hooks.example/x"))).toBe("ok");
  });

  it("refuses other schemes, credentials and garbage", async () => {
    expect(await code(strict("ftp://hooks.example/x"))).toBe("invalid_webhook_url");
    expect(await code(strict("https://user:pw@hooks.example/x"))).toBe("invalid_webhook_url");
    expect(await code(strict("not a url"))).toBe("invalid_webhook_url");
  });

  it("checks again at delivery and connects only to the checked address", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.writeHead(200).end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const req = { url: `http://hooks.example:${port}/x`, headers: {}, body: "{}" };
      // The name now resolves to loopback (DNS rebinding after registration): refused, never connected.
      const strictSend = new HttpWebhookTransport({
        allowPrivate: false,
        timeoutMs: 2000,
        resolve: resolveTo("127.0.0.1"),
      });
      const refused = await strictSend.send(req);
      expect(refused).toMatchObject({ ok: false, statusCode: null });
      expect(refused.error).toContain("private or reserved");
      expect(hits).toBe(0);
      // Allowed: the connection goes to the address the resolver gave, whatever the name.
      const open = new HttpWebhookTransport({
        allowPrivate: true,
        timeoutMs: 2000,
        resolve: resolveTo("127.0.0.1"),
      });
      expect(await open.send(req)).toMatchObject({ ok: true, statusCode: 200 });
      expect(hits).toBe(1);
    } finally {
      server.close();
    }
  });

  it("does not follow redirects", async () => {
    const server = createServer((_req, res) =>
      res.writeHead(302, { location: "http://169.254.169.254/" }).end(),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const t = new HttpWebhookTransport({ allowPrivate: true, timeoutMs: 2000 });
      const r = await t.send({ url: `http://127.0.0.1:${port}/`, headers: {}, body: "{}" });
      expect(r).toMatchObject({ ok: false, statusCode: 302 });
      expect(r.error).toContain("redirects are not followed");
    } finally {
      server.close();
    }
  });
});
