import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyWebhook, WebhookVerificationError } from "./webhooks.ts";

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBvZiAzMiBieXRlcyE=";
const id = "evt_0123";
const body = JSON.stringify({ id, type: "image.ready", timestamp: "2026-01-05T10:00:00.000Z", data: {} });
const now = 1_767_607_200;
const sign = (s: string, ts: number, b = body) =>
  `v1,${createHmac("sha256", Buffer.from(s.slice(6), "base64"))
    .update(`${id}.${ts}.${b}`)
    .digest("base64")}`;
const clock = { now: () => now * 1000 };
const headers = (sig: string, ts = now) => ({
  "webhook-id": id,
  "webhook-timestamp": String(ts),
  "webhook-signature": sig,
});

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return (err as WebhookVerificationError).code;
  }
  return "accepted";
}

describe("verifyWebhook", () => {
  it("returns the event of a signed body, from Node headers or a Fetch Headers", async () => {
    const event = await verifyWebhook(body, headers(sign(secret, now)), secret, clock);
    expect(event.type).toBe("image.ready");
    const h = new Headers(headers(sign(secret, now)));
    expect((await verifyWebhook(new TextEncoder().encode(body), h, secret, clock)).id).toBe(id);
  });

  it("accepts any of several signatures and any of several secrets (rotation)", async () => {
    const both = `${sign(other, now)} ${sign(secret, now)}`;
    expect((await verifyWebhook(body, headers(both), secret, clock)).id).toBe(id);
    expect((await verifyWebhook(body, headers(sign(other, now)), [secret, other], clock)).id).toBe(id);
  });

  it("refuses a changed body, another secret, a stale or future timestamp, missing headers", async () => {
    expect(await refusal(verifyWebhook(`${body} `, headers(sign(secret, now)), secret, clock))).toBe(
      "invalid_signature",
    );
    expect(await refusal(verifyWebhook(body, headers(sign(other, now)), secret, clock))).toBe(
      "invalid_signature",
    );
    expect(
      await refusal(verifyWebhook(body, headers(`v2,${sign(secret, now).slice(3)}`), secret, clock)),
    ).toBe("invalid_signature");
    expect(
      await refusal(verifyWebhook(body, headers(sign(secret, now - 301), now - 301), secret, clock)),
    ).toBe("timestamp_out_of_tolerance");
    expect(
      await refusal(verifyWebhook(body, headers(sign(secret, now + 301), now + 301), secret, clock)),
    ).toBe("timestamp_out_of_tolerance");
    expect(await refusal(verifyWebhook(body, { "webhook-id": id }, secret, clock))).toBe("missing_headers");
    expect(await refusal(verifyWebhook(body, headers(sign(secret, now)), "whsec_!!", clock))).toBe(
      "invalid_secret",
    );
  });
});
