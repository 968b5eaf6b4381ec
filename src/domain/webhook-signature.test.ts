import { describe, expect, it } from "vitest";
import { newWebhookSecret, parseWebhookSecret, signatureHeader } from "./webhook-signature.ts";

describe("Standard Webhooks signatures", () => {
  // The example of the Standard Webhooks specification's reference libraries.
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const ts = 1614265330;
  const body = '{"test": 2432232314}';

  it("signs the spec's example as its libraries do", () => {
    expect(signatureHeader([secret], id, ts, body)).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("signs with every valid secret, current first", () => {
    const other = newWebhookSecret();
    const header = signatureHeader([other, secret], id, ts, body).split(" ");
    expect(header).toHaveLength(2);
    expect(header[1]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("accepts only whsec_ secrets of a sane length", () => {
    expect(parseWebhookSecret(newWebhookSecret())?.length).toBe(32);
    expect(parseWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toBeNull();
    expect(parseWebhookSecret("whsec_short")).toBeNull();
    expect(parseWebhookSecret("whsec_not base64!!")).toBeNull();
  });
});
