import { describe, expect, it } from "vitest";
import { AppError } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import { originalKey, parseKey } from "../domain/keys.ts";
import { fixture, fixtureNames, parseOrInvalid } from "./fixtures.test-support.ts";
import { decodeFormKey, parseStorageEvents } from "./parse-storage-event.ts";

function s3Body(key: string, eventName = "ObjectCreated:Put", eventSource = "aws:s3") {
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource,
        eventName,
        s3: { bucket: { name: "b" }, object: { key, size: 10, eTag: "e" } },
      },
    ],
  };
}

function eventBridgeBody(key: string, detailType = "Object Created") {
  return {
    version: "0",
    "detail-type": detailType,
    source: "aws.s3",
    detail: { bucket: { name: "b" }, object: { key, size: 10, etag: "e" }, reason: "PutObject" },
  };
}

function sns(message: unknown) {
  return { Type: "Notification", MessageId: "m-1", TopicArn: "arn:t", Message: JSON.stringify(message) };
}

function expectInvalid(body: unknown) {
  let thrown: unknown;
  try {
    parseStorageEvents(body);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AppError);
  expect(thrown).toMatchObject({ code: "invalid_event", status: 400 });
}

describe("parseStorageEvents on recorded payloads", () => {
  it("reads an S3 notification delivered straight to SQS (AWS docs example)", () => {
    expect(parseStorageEvents(fixture("aws-put.json"))).toEqual({
      events: [
        {
          key: "HappyFace.jpg",
          size: 1024,
          etag: "d41d8cd98f00b204e9800998ecf8427e",
          source: "aws:s3",
          bucket: "mybucket",
          eventName: "ObjectCreated:Put",
        },
      ],
      skipped: 0,
    });
  });

  it("unwraps the SNS envelope to the same event", () => {
    expect(parseStorageEvents(fixture("aws-sns.json"))).toEqual(parseStorageEvents(fixture("aws-put.json")));
  });

  it("skips the s3:TestEvent, directly or through SNS", () => {
    expect(parseStorageEvents(fixture("aws-test-event.json"))).toEqual({ events: [], skipped: 1 });
    expect(parseStorageEvents(sns(fixture("aws-test-event.json")))).toEqual({ events: [], skipped: 1 });
  });

  it("reads EventBridge Object Created and skips Object Deleted", () => {
    expect(parseStorageEvents(fixture("aws-eventbridge.json"))).toEqual({
      events: [
        {
          key: "example-key",
          size: 5,
          etag: "b1946ac92492d2347c6235b4d2611184",
          source: "aws.s3-eventbridge",
          bucket: "DOC-EXAMPLE-BUCKET1",
          eventName: "ObjectCreated:Put",
        },
      ],
      skipped: 0,
    });
    expect(parseStorageEvents(fixture("aws-eventbridge-multipart.json")).events[0]).toMatchObject({
      key: "raw/health-check/2023-08-08T14:03:40.532432.zip",
      size: 198524144,
      etag: "4af981f98d22a0b9979da24b259e5e42-12",
      eventName: "ObjectCreated:CompleteMultipartUpload",
    });
    expect(parseStorageEvents(fixture("aws-eventbridge-deleted.json"))).toEqual({ events: [], skipped: 1 });
  });

  it("uses EventBridge keys as delivered: no form decoding", () => {
    const key = "%2B++ %20.mp3";
    expect(parseStorageEvents(eventBridgeBody(key)).events[0]?.key).toBe(key);
  });

  it("reads MinIO notifications: s3: prefix, %2F-escaped slashes", () => {
    expect(parseStorageEvents(fixture("minio-put.json")).events).toEqual([
      {
        key: "5cdfb588cea4de1db3034a87/colors.xml",
        size: 1287,
        etag: "3b1bd1b5a4e6ea7a1ff0e4a7d3c4e6d2",
        source: "minio:s3",
        bucket: "mybucket",
        eventName: "ObjectCreated:Put",
      },
    ]);
    // A blank bucket name and ETag (as in the quoted issue) are "unknown", not errors.
    expect(parseStorageEvents(fixture("minio-post.json")).events).toEqual([
      { key: "users/ABC", size: 132, etag: null, source: "minio:s3", eventName: "ObjectCreated:Post" },
    ]);
  });

  it("reads the Ceph RGW record, whose size is a string, with or without the s3: prefix", () => {
    const expected = {
      key: "myimage1.jpg",
      size: 1024,
      etag: "37b51d194a7513e45b56f6524f2d51f2",
      source: "ceph:s3",
      bucket: "mybucket1",
      eventName: "ObjectCreated:Put",
    };
    const doc = fixture("ceph-put-doc.json") as { Records: { eventName: string }[] };
    expect(parseStorageEvents(doc).events).toEqual([expected]);
    (doc.Records[0] as { eventName: string }).eventName = "s3:ObjectCreated:Put";
    expect(parseStorageEvents(doc).events).toEqual([expected]);
  });

  it("form-decodes keys and skips non-creation records in the same message", () => {
    const result = parseStorageEvents(fixture("aws-mixed-encoded.json"));
    expect(result.skipped).toBe(1);
    expect(result.events).toEqual([
      expect.objectContaining({
        key: "uploads/red flower+1é (1).jpg",
        size: 7340032,
        eventName: "ObjectCreated:CompleteMultipartUpload",
      }),
    ]);
  });

  it.each(fixtureNames().filter((n) => n.startsWith("ceph-") && n !== "ceph-put-doc.json"))(
    "accepts the real Ceph RGW capture %s",
    (name) => {
      const result = parseOrInvalid(fixture(name));
      expect(result).not.toBe("invalid");
      if (result !== "invalid") expect(result.events.length + result.skipped).toBeGreaterThan(0);
    },
  );

  it("carries an imgup original key unchanged through every shape", () => {
    const key = originalKey(newImageId());
    for (const body of [
      s3Body(key),
      s3Body(encodeURIComponent(key), "s3:ObjectCreated:Post", "minio:s3"),
      sns(s3Body(key)),
      eventBridgeBody(key),
      sns(eventBridgeBody(key)),
    ]) {
      const [event] = parseStorageEvents(body).events;
      expect(event?.key).toBe(key);
      expect(parseKey(event?.key ?? "")?.kind).toBe("original");
    }
  });
});

describe("parseStorageEvents on what it must refuse or skip", () => {
  it("skips SNS subscription handshakes", () => {
    for (const Type of ["SubscriptionConfirmation", "UnsubscribeConfirmation"]) {
      expect(parseStorageEvents({ Type, Message: "You have chosen to subscribe" })).toEqual({
        events: [],
        skipped: 1,
      });
    }
  });

  it.each([
    ["null", null],
    ["a number", 42],
    ["a string", "Records"],
    ["an array", [s3Body("k")]],
    ["an empty object", {}],
    ["Records that is not an array", { Records: { 0: {} } }],
    ["a record that is not an object", { Records: [null] }],
    ["a sparse Records array", { Records: Object.assign(new Array(2), { 1: s3Body("k").Records[0] }) }],
    ["a record without eventName", { Records: [{ s3: { object: { key: "k" } } }] }],
    ["a record without s3", { Records: [{ eventName: "ObjectCreated:Put" }] }],
    ["a record without s3.object.key", { Records: [{ eventName: "ObjectCreated:Put", s3: { object: {} } }] }],
    ["a numeric key", s3Body(42 as unknown as string)],
    ["an empty key", s3Body("")],
    ["a malformed escape", s3Body("a%zzb")],
    ["a truncated escape", s3Body("a%E2%82")],
    ["a key longer than S3 allows", s3Body("k".repeat(1025))],
    ["an encoded key longer than any real one", s3Body("%41".repeat(1025))],
    ["more records than a message can hold", { Records: Array(1001).fill(s3Body("k").Records[0]) }],
    ["SNS without Message", { Type: "Notification", MessageId: "m" }],
    ["SNS with a non-string Message", { Type: "Notification", Message: { Records: [] } }],
    ["SNS with a Message that is not JSON", { Type: "Notification", Message: "{not json" }],
    ["SNS inside SNS", sns(sns(s3Body("k")))],
    ["EventBridge from another source", { ...eventBridgeBody("k"), source: "aws.ec2" }],
    ["EventBridge without detail.object.key", { ...eventBridgeBody("k"), detail: { object: {} } }],
    ["EventBridge with an empty key", eventBridgeBody("")],
  ])("refuses %s with invalid_event", (_name, body) => {
    expectInvalid(body);
  });

  it("reads only own properties: __proto__ and friends are data, never the prototype", () => {
    expectInvalid(JSON.parse('{"__proto__": {"Records": []}}'));
    expectInvalid(
      JSON.parse('{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"__proto__":{"key":"x"}}}}]}'),
    );
    const eb = eventBridgeBody("k");
    eb.detail.reason = "constructor";
    expect(parseStorageEvents(eb).events[0]?.eventName).toBe("ObjectCreated");
    const polluted = JSON.parse(
      '{"__proto__":{"polluted":1},"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}',
    );
    expect(parseStorageEvents(polluted).events).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // As if Object.prototype had been polluted elsewhere: inherited data never counts.
    expectInvalid(Object.create(s3Body("k")));
    expectInvalid({ Records: [Object.create(s3Body("k").Records[0] ?? null)] });
  });

  it("decodes form-encoded keys: + is a space, %2B a plus", () => {
    expect(decodeFormKey("red+flower.jpg")).toBe("red flower.jpg");
    expect(decodeFormKey("a%2Bb%20c%2Fd")).toBe("a+b c/d");
    expect(decodeFormKey("caf%C3%A9")).toBe("café");
  });
});
