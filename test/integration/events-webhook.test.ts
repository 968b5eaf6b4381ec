import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originalKey, publicOriginalKey, uploadKey, variantKey } from "../../src/domain/keys.ts";
import type { LocalObjectStore } from "../../src/storage/local.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, finishedJob, type Running, startImgup } from "../support/harness.ts";

const TOKEN = "webhook-token-0123456789abcdef";

/** A Ceph RGW record as it pushes them (see test/fixtures/events). */
function cephRecord(key: string, size: number) {
  return {
    eventVersion: "2.2",
    eventSource: "ceph:s3",
    awsRegion: "us-east-1",
    eventTime: new Date().toISOString(),
    eventName: "ObjectCreated:Put",
    s3: {
      s3SchemaVersion: "1.0",
      bucket: { name: "imgup-dev" },
      object: { key: encodeURIComponent(key).replace(/%20/g, "+"), size, eTag: "abc" },
    },
  };
}

describe.each(dbTargets())("storage event webhook on $name", (target) => {
  let run: Running;
  let alice: Api;
  let hook: Api;

  beforeAll(async () => {
    run = await startImgup(target.make(), { IMGUP_EVENTS_TOKEN: TOKEN });
    alice = new Api(run.baseUrl, run.alice);
    hook = new Api(run.baseUrl, TOKEN);
    // Play a storage without built-in events: only the webhook may announce objects.
    (run.imgup.store as LocalObjectStore).setObjectCreatedListener(undefined);
  });
  afterAll(async () => run?.stop());

  /** An intent whose bytes are in the storage, but nobody told imgup yet. */
  async function uploadedSilently() {
    const bytes = await makeImage("jpeg");
    const r = await alice.createIntent({ filename: "e.jpg", contentType: "image/jpeg", size: bytes.length });
    const key = uploadKey(r.body.image.id);
    await run.imgup.store.put(key, bytes, { contentType: "image/jpeg" });
    return { id: r.body.image.id, key, size: bytes.length };
  }

  it("refuses a missing or wrong token", async () => {
    const body = { Records: [] };
    expect((await new Api(run.baseUrl).request("POST", "/v1/events/storage", { json: body })).status).toBe(
      401,
    );
    expect(
      (await hook.as("wrong-token-0123456789abcdef").request("POST", "/v1/events/storage", { json: body }))
        .status,
    ).toBe(401);
  });

  it("turns a record into processing: the image becomes ready from the event alone", async () => {
    const img = await uploadedSilently();
    const r = await hook.request("POST", "/v1/events/storage", {
      json: { Records: [cephRecord(img.key, img.size)] },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 1, enqueued: 1, duplicates: 0 });
    expect((await alice.settled(img.id)).status).toBe("ready");
  });

  it("accepts the token in the query string (Ceph cannot send headers) and SNS's text/plain bodies", async () => {
    const img = await uploadedSilently();
    const sns = {
      Type: "Notification",
      MessageId: "m1",
      TopicArn: "arn:aws:sns:us-east-1:1:t",
      Message: JSON.stringify({ Records: [cephRecord(img.key, img.size)] }),
    };
    const r = await new Api(run.baseUrl).request("POST", `/v1/events/storage?token=${TOKEN}`, {
      body: JSON.stringify(sns),
      headers: { "content-type": "text/plain; charset=UTF-8" },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ enqueued: 1 });
    expect((await alice.settled(img.id)).status).toBe("ready");
  });

  it("delivered 5 times and out of order: one ready image each, one job run each", async () => {
    const a = await uploadedSilently();
    const b = await uploadedSilently();
    const deliveries = [b, a, a, b, a, b, b, a, a, b].map((img) => ({
      Records: [cephRecord(img.key, img.size)],
    }));
    const results = await Promise.all(
      deliveries.map((json) => hook.request("POST", "/v1/events/storage", { json })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const enqueued = results.reduce((n, r) => n + Number(r.body.enqueued), 0);
    expect(enqueued).toBe(2);
    for (const img of [a, b]) {
      expect((await alice.settled(img.id)).status).toBe("ready");
      expect(await finishedJob(run.imgup.jobs, `process:${img.id}`)).toMatchObject({
        status: "done",
        attempts: 1,
      });
    }
  });

  it("skips test events, ignores keys that are not upload keys, refuses junk with 400", async () => {
    const test = await hook.request("POST", "/v1/events/storage", {
      json: { Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-01-01T00:00:00Z", Bucket: "b" },
    });
    expect(test.body).toMatchObject({ received: 0, skipped: 1 });
    const id = "01a20093-bb84-7083-ac30-021ce1fa58b9";
    const variant = await hook.request("POST", "/v1/events/storage", {
      json: {
        Records: [
          cephRecord(variantKey(id, "thumb", "webp"), 10),
          cephRecord("some/other/file.jpg", 10),
          // Only the worker writes these; an event for them never starts processing (issue 13).
          cephRecord(originalKey(id), 10),
          cephRecord(publicOriginalKey(id), 10),
        ],
      },
    });
    expect(variant.body).toMatchObject({ received: 4, ignored: 4, enqueued: 0 });
    const junk = await hook.request("POST", "/v1/events/storage", { json: { Records: "nope" } });
    expect(junk.status).toBe(400);
    expect(junk.body).toMatchObject({ code: "invalid_event" });
    const notJson = await hook.request("POST", "/v1/events/storage", {
      body: "{oops",
      headers: { "content-type": "text/plain" },
    });
    expect(notJson.status).toBe(400);
  });
});
