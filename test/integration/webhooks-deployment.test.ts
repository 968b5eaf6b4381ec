import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../client/index.ts";
import { newWebhookSecret } from "../../src/domain/webhook-signature.ts";
import { Api } from "../support/api.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { startReceiver } from "../support/webhook-receiver.ts";

/**
 * Deployment-wide endpoints: one from the configuration (IMGUP_WEBHOOK_URL/SECRET, synced at start)
 * and one an admin registers through the API. Both get every owner's events; an owner cannot make one.
 */
describe.each(dbTargets())("deployment-wide webhooks on $name", (target) => {
  let run: Running;
  let fromConfig: Awaited<ReturnType<typeof startReceiver>>;
  let fromApi: Awaited<ReturnType<typeof startReceiver>>;
  const configSecret = newWebhookSecret();
  let apiSecret: string;

  beforeAll(async () => {
    fromConfig = await startReceiver();
    fromApi = await startReceiver();
    run = await startImgup(target.make(), {
      IMGUP_WEBHOOK_ALLOW_PRIVATE: "true",
      IMGUP_WEBHOOK_POLL_MS: "50",
      IMGUP_WEBHOOK_URL: fromConfig.url,
      IMGUP_WEBHOOK_SECRET: configSecret,
    });
    const admin = new Api(
      run.baseUrl,
      (await run.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key,
    );
    const created = await admin.request<{ secret: string; endpoint: { ownerId: string | null } }>(
      "POST",
      "/v1/webhooks",
      { json: { url: fromApi.url, scope: "deployment" } },
    );
    expect(created.status).toBe(201);
    apiSecret = created.body.secret;
  });
  afterAll(async () => {
    await run?.stop();
    await fromConfig?.close();
    await fromApi?.close();
  });

  it("an owner cannot register one", async () => {
    const alice = new Api(run.baseUrl, run.alice);
    const refused = await alice.request("POST", "/v1/webhooks", {
      json: { url: fromApi.url, scope: "deployment" },
    });
    expect(refused.status).toBe(403);
  });

  it("both get every owner's events, signed with their own secret", async () => {
    const ids: string[] = [];
    for (const key of [run.alice, run.bob]) {
      const api = new Api(run.baseUrl, key);
      const intent = await api.createIntent({ filename: "x.jpg", contentType: "image/jpeg", size: 100 });
      expect(intent.status).toBe(201);
      const id = intent.body.image.id as string;
      expect((await api.request("DELETE", `/v1/uploads/${id}`)).status).toBe(204);
      ids.push(id);
    }
    for (const [receiver, secret] of [
      [fromConfig, configSecret],
      [fromApi, apiSecret],
    ] as const) {
      await eventually(async () => receiver.received.length >= 2);
      const events = await Promise.all(
        receiver.received.map((r) => verifyWebhook(r.body, r.headers, secret)),
      );
      expect(events.map((e) => [e.type, e.data.id]).sort()).toEqual(
        ids.map((id) => ["image.deleted", id]).sort(),
      );
    }
  });
});
