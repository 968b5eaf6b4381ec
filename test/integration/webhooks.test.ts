import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook, type WebhookEvent } from "../../client/index.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { TestClock } from "../support/test-clock.ts";
import { startReceiver } from "../support/webhook-receiver.ts";

const unsigned = (e: WebhookEvent | undefined) =>
  JSON.parse(JSON.stringify(e ?? null).replace(/\?exp=\d+&sig=[\w-]+/g, ""));

interface DeliveryJson {
  id: string;
  eventId: string;
  eventType: string;
  imageId: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
}

/**
 * Issue 17's webhook scenario through the real API: a receiver gets exactly the events of a scripted
 * run, signed; survives its own downtime (10 minutes of the worker's clock); a replay resends what
 * was asked; the pull feed shows the same events.
 */
describe.each(dbTargets())("webhooks on $name", (target) => {
  const clock = new TestClock();
  let run: Running;
  let alice: Api;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let secret: string;
  /** Every secret the endpoint had: old deliveries were signed with the old one. */
  const secrets: string[] = [];
  let endpointId: string;
  const startedAt = new Date(Date.now() - 1000).toISOString();
  const extraEnv: Record<string, string> = {};
  if (target.name === "postgres" && process.env.REDIS_URL) {
    extraEnv.REDIS_URL = process.env.REDIS_URL;
    extraEnv.REDIS_KEY_PREFIX = `t${Math.random().toString(36).slice(2, 10)}:`;
  }

  beforeAll(async () => {
    receiver = await startReceiver(clock.now);
    run = await startImgup(
      target.make(),
      {
        IMGUP_WEBHOOK_ALLOW_PRIVATE: "true",
        IMGUP_WEBHOOK_POLL_MS: "50",
        IMGUP_EVENTS_POLL_MS: "50",
        IMGUP_WEBHOOK_RETRY_SCHEDULE: "1m,2m,4m,8m,16m,1h,2h,4h,8h,16h",
        ...extraEnv,
      },
      { webhookClock: clock.now },
    );
    alice = new Api(run.baseUrl, run.alice);
    const created = await alice.request<{ endpoint: { id: string; enabled: boolean }; secret: string }>(
      "POST",
      "/v1/webhooks",
      { json: { url: receiver.url } },
    );
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(created.body.endpoint.enabled).toBe(true);
    secret = created.body.secret;
    secrets.push(secret);
    endpointId = created.body.endpoint.id;
  });
  afterAll(async () => {
    await run?.stop();
    await receiver?.close();
  });

  /** Verifies every received webhook with the SDK, at the worker's clock. */
  const verifiedEvents = () =>
    Promise.all(
      receiver.received.map(async (r) => {
        const event = await verifyWebhook(r.body, r.headers, secrets, { now: () => r.receivedAt });
        expect(r.headers["webhook-id"]).toBe(event.id);
        return event;
      }),
    );
  const deliveries = async () =>
    (await alice.request<{ items: DeliveryJson[] }>("GET", `/v1/webhooks/${endpointId}/deliveries?limit=200`))
      .body.items;
  const feed = async (after?: string) =>
    (
      await alice.request<{ events: WebhookEvent[]; cursor: string }>(
        "GET",
        `/v1/events${after ? `?after=${encodeURIComponent(after)}` : ""}`,
      )
    ).body;

  let readyId = "";
  let rejectedId = "";

  it("delivers exactly the scripted run's events, signed, and the feed shows the same ones", async () => {
    const jpeg = await makeImage("jpeg", 64, 48);
    const ok = await alice.uploadBytes(jpeg, { filename: "a.jpg", contentType: "image/jpeg" });
    readyId = ok.intent.image.id;
    expect((await alice.settled(readyId)).status).toBe("ready");
    const png = await makeImage("png", 10, 10);
    const bad = await alice.uploadBytes(png, { filename: "b.jpg", contentType: "image/jpeg" });
    rejectedId = bad.intent.image.id;
    expect((await alice.settled(rejectedId)).status).toBe("rejected");
    expect((await alice.request("DELETE", `/v1/images/${readyId}`)).status).toBe(204);

    await eventually(async () => receiver.received.length >= 3);
    const events = await verifiedEvents();
    expect(events.map((e) => `${e.type} ${e.data.id}`).sort()).toEqual(
      [`image.ready ${readyId}`, `image.rejected ${rejectedId}`, `image.deleted ${readyId}`].sort(),
    );
    const forReady = events.filter((e) => e.data.id === readyId).map((e) => e.type);
    expect(forReady).toEqual(["image.ready", "image.deleted"]);
    const ready = events.find((e) => e.type === "image.ready");
    expect(ready?.data).toMatchObject({ status: "ready", width: 64, height: 48, format: "jpeg" });
    expect(ready?.data.urls?.original).toBe(`${run.baseUrl}/i/${readyId}/original`);
    expect(events.find((e) => e.type === "image.rejected")?.data.rejectReason).toBe("type_mismatch");

    const pulled = await feed();
    expect(pulled.events.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort());
    // The same JSON, but for the owner's always-signed source URL, signed afresh at each rendering.
    for (const e of pulled.events) expect(unsigned(e)).toEqual(unsigned(events.find((w) => w.id === e.id)));
    // Nothing after the cursor; another owner sees none of it.
    expect((await feed(pulled.cursor)).events).toEqual([]);
    const bob = alice.as(run.bob);
    expect((await bob.request<{ events: unknown[] }>("GET", "/v1/events")).body.events).toEqual([]);
    const log = await deliveries();
    expect(log).toHaveLength(3);
    for (const d of log) expect(d).toMatchObject({ status: "succeeded", attempts: 1, lastStatusCode: 204 });
  });

  it("a receiver down for 10 minutes gets the events after it returns, in order per image", async () => {
    const before = receiver.received.length;
    const { cursor } = await feed();
    receiver.state.down = true;
    const jpeg = await makeImage("jpeg", 32, 32);
    const up = await alice.uploadBytes(jpeg, { filename: "c.jpg", contentType: "image/jpeg" });
    const id = up.intent.image.id;
    expect((await alice.settled(id)).status).toBe("ready");
    expect((await alice.request("DELETE", `/v1/images/${id}`)).status).toBe(204);

    // Ten minutes of failed attempts: the clock moves a minute at a time, each due retry fails.
    for (let minute = 0; minute < 10; minute++) {
      clock.advance(60_000);
      run.imgup.webhooks.worker.wake();
      await eventually(async () => {
        // Settled for this minute: the image's first event failed and waits for a later retry.
        const head = (await deliveries()).find((d) => d.imageId === id && d.eventType === "image.ready");
        return (
          head?.status === "pending" &&
          head.attempts > 0 &&
          Date.parse(head.nextAttemptAt ?? "") > clock.now()
        );
      });
    }
    const mine = (await deliveries()).filter((d) => d.imageId === id);
    expect(mine).toHaveLength(2);
    const readyDelivery = mine.find((d) => d.eventType === "image.ready");
    const deletedDelivery = mine.find((d) => d.eventType === "image.deleted");
    expect(readyDelivery?.attempts).toBeGreaterThanOrEqual(3);
    expect(readyDelivery).toMatchObject({ lastStatusCode: 503, lastError: "HTTP 503" });
    // The later event of the same image waits behind the earlier one: never tried yet.
    expect(deletedDelivery?.attempts).toBe(0);
    expect(receiver.received.length).toBe(before);

    receiver.state.down = false;
    clock.advance(4 * 3600_000);
    run.imgup.webhooks.worker.wake();
    await eventually(async () => receiver.received.length >= before + 2);
    const events = (await verifiedEvents()).slice(before);
    expect(events.map((e) => `${e.type} ${e.data.id}`)).toEqual([`image.ready ${id}`, `image.deleted ${id}`]);
    const pulled = await feed(cursor);
    expect(pulled.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    const settled = (await deliveries()).filter((d) => d.imageId === id);
    for (const d of settled) expect(d.status).toBe("succeeded");
  });

  it("replays one event, and everything since a time, with the original ids", async () => {
    const all = await verifiedEvents();
    const first = all.find((e) => e.type === "image.ready" && e.data.id === readyId);
    const before = receiver.received.length;
    const one = await alice.request<{ queued: number }>("POST", `/v1/webhooks/${endpointId}/replay`, {
      json: { eventId: first?.id },
    });
    expect(one).toMatchObject({ status: 202, body: { queued: 1 } });
    await eventually(async () => receiver.received.length >= before + 1);
    const [again] = (await verifiedEvents()).slice(before);
    expect(unsigned(again)).toEqual(unsigned(first));

    const since = await alice.request<{ queued: number }>("POST", `/v1/webhooks/${endpointId}/replay`, {
      json: { since: startedAt },
    });
    expect(since).toMatchObject({ status: 202, body: { queued: 5 } });
    // Settled, not counted: a replayed later event of an image waits for its earlier one (ordering),
    // so the receiver's count can reach six before the log has every delivery succeeded.
    await eventually(async () => (await deliveries()).every((d) => d.status === "succeeded"));
    expect(receiver.received.length).toBeGreaterThanOrEqual(before + 6);
    const replayed = (await verifiedEvents()).slice(before + 1);
    expect([...new Set(replayed.map((e) => e.id))].sort()).toEqual(all.map((e) => e.id).sort());

    const missing = await alice.request("POST", `/v1/webhooks/${endpointId}/replay`, {
      json: { eventId: "evt_00000000000000000000000000000000" },
    });
    expect(missing).toMatchObject({ status: 404, body: { code: "event_not_found" } });
    const bob = alice.as(run.bob);
    const notBobs = await bob.request("POST", `/v1/webhooks/${endpointId}/replay`, {
      json: { since: startedAt },
    });
    expect(notBobs).toMatchObject({ status: 404, body: { code: "webhook_not_found" } });
  });

  it("a long poll returns as soon as an event commits, and refuses a foreign cursor", async () => {
    const bob = alice.as(run.bob);
    const { cursor } = (await bob.request<{ cursor: string }>("GET", "/v1/events")).body;
    const intent = await bob.createIntent({ filename: "x.jpg", contentType: "image/jpeg", size: 100 });
    const waiting = bob.request<{ events: WebhookEvent[] }>("GET", `/v1/events?after=${cursor}&wait=20`);
    expect((await bob.request("DELETE", `/v1/uploads/${intent.body.image.id}`)).status).toBe(204);
    const got = await waiting;
    expect(got.body.events.map((e) => [e.type, e.data.id])).toEqual([
      ["image.deleted", intent.body.image.id],
    ]);
    const bad = await bob.request("GET", "/v1/events?after=not-a-cursor");
    expect(bad).toMatchObject({ status: 400, body: { code: "invalid_cursor" } });
  });

  it("lists endpoints without secrets, rotates with two signatures, and deletes", async () => {
    const list = await alice.request<{ items: Array<Record<string, unknown>> }>("GET", "/v1/webhooks");
    expect(list.body.items).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain("whsec_");
    const rotated = await alice.request<{ secret: string; endpoint: { previousSecretExpiresAt: string } }>(
      "POST",
      `/v1/webhooks/${endpointId}/rotate-secret`,
      { json: {} },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(secret);
    const before = receiver.received.length;
    const all = await verifiedEvents();
    await alice.request("POST", `/v1/webhooks/${endpointId}/replay`, { json: { eventId: all[0]?.id } });
    await eventually(async () => receiver.received.length > before);
    const last = receiver.received.at(-1);
    expect(String(last?.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    // Both the old and the new secret verify it.
    await verifyWebhook(last?.body ?? "", last?.headers ?? {}, secret, { now: () => last?.receivedAt ?? 0 });
    await verifyWebhook(last?.body ?? "", last?.headers ?? {}, rotated.body.secret, {
      now: () => last?.receivedAt ?? 0,
    });
    secrets.push(rotated.body.secret);
    expect((await alice.request("DELETE", `/v1/webhooks/${endpointId}`)).status).toBe(204);
    expect((await alice.request("GET", `/v1/webhooks/${endpointId}`)).status).toBe(404);
  });
});
