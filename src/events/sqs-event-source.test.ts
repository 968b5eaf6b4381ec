/**
 * SqsEventSource against a STUBBED SQS client: no SQS (nor LocalStack/ElasticMQ) can run on this
 * machine, so `send` inspects the command class (ReceiveMessageCommand / DeleteMessageBatchCommand)
 * and answers with AWS-shaped responses whose bodies are the recorded payloads in
 * test/fixtures/events (S3 direct, SNS-wrapped, EventBridge, the S3 test event) plus malformed ones.
 * The stub lives in sqs-stub.test-support.ts. What this cannot show: real long-poll timing,
 * visibility timeouts and redelivery by SQS itself.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { newImageId } from "../domain/ids.ts";
import { originalKey } from "../domain/keys.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { fixture, fixtureText } from "./fixtures.test-support.ts";
import { receiveBackoffMs, SqsEventSource } from "./sqs-event-source.ts";
import { QUEUE_URL, type Step, StubSqs } from "./sqs-stub.test-support.ts";

/** An S3 → SQS body from the AWS docs example, pointed at one of our keys. */
function s3Body(key: string): string {
  const body = fixture("aws-put.json") as { Records: { s3: { object: { key: string } } }[] };
  (body.Records[0] as { s3: { object: { key: string } } }).s3.object.key = key;
  return JSON.stringify(body);
}

/** The same through SNS, from the recorded envelope. */
function snsBody(key: string): string {
  const envelope = fixture("aws-sns.json") as { Message: string };
  return JSON.stringify({ ...envelope, Message: s3Body(key) });
}

function harness(script: Step[], handle?: (events: ObjectCreatedEvent[]) => Promise<void>) {
  const sqs = new StubSqs(script);
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const handled: ObjectCreatedEvent[][] = [];
  const backoffs: number[] = [];
  const source = new SqsEventSource({
    client: sqs.asClient(),
    queueUrl: QUEUE_URL,
    logger,
    handle: async (events) => {
      sqs.timeline.push(`handle:${events.map((e) => e.key).join(",")}`);
      handled.push(events);
      await handle?.(events);
    },
    backoff: (failures) => {
      backoffs.push(failures);
      return 1;
    },
  });
  return { sqs, source, logs, handled, backoffs };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("SqsEventSource.pollOnce", () => {
  it("long-polls with the configured limits", async () => {
    const sqs = new StubSqs([{ messages: [] }]);
    const logger = pino({ level: "silent" });
    const source = new SqsEventSource({
      client: sqs.asClient(),
      queueUrl: QUEUE_URL,
      logger,
      handle: async () => {},
      visibilityTimeoutSeconds: 120,
    });
    expect(await source.pollOnce()).toEqual({ received: 0, handled: 0, malformed: 0, failed: 0 });
    expect(sqs.receives[0]?.input).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 20,
      VisibilityTimeout: 120,
      MessageSystemAttributeNames: ["ApproximateReceiveCount"],
    });
    expect(
      () =>
        new SqsEventSource({
          client: sqs.asClient(),
          queueUrl: QUEUE_URL,
          logger,
          handle: async () => {},
          maxMessages: 11,
        }),
    ).toThrow();
  });

  it("hands direct, SNS-wrapped and EventBridge events over, then deletes the messages", async () => {
    const [a, b] = [originalKey(newImageId()), originalKey(newImageId())];
    const { sqs, source, handled } = harness([]);
    const messages = [
      sqs.message(s3Body(a)),
      sqs.message(snsBody(b)),
      sqs.message(fixtureText("aws-eventbridge.json")),
    ];
    sqs.deliver(...messages);

    expect(await source.pollOnce()).toEqual({ received: 3, handled: 3, malformed: 0, failed: 0 });
    expect(handled.map((events) => events.map((e) => e.key))).toEqual([[a], [b], ["example-key"]]);
    expect(handled[1]?.[0]).toMatchObject({
      source: "aws:s3",
      bucket: "mybucket",
      eventName: "ObjectCreated:Put",
    });
    // Deleting before the handler resolved could lose an upload; the delete comes strictly after.
    expect(sqs.timeline).toEqual([
      "receive",
      `handle:${a}`,
      `handle:${b}`,
      "handle:example-key",
      "delete:rh-1,rh-2,rh-3",
    ]);
  });

  it("deletes a test event without calling the handler", async () => {
    const { sqs, source, handled } = harness([]);
    sqs.deliver(sqs.message(fixtureText("aws-test-event.json")));
    expect(await source.pollOnce()).toMatchObject({ handled: 1 });
    expect(handled).toEqual([]);
    expect(sqs.deleted).toEqual(["rh-1"]);
  });

  it("deletes malformed messages and logs them at warn with id and a truncated body", async () => {
    const key = originalKey(newImageId());
    const { sqs, source, handled, logs } = harness([]);
    const junk = `{"Records": "${"x".repeat(5000)}"}`;
    const messages = [
      sqs.message("this is not JSON", "bad-json"),
      sqs.message(junk, "bad-shape"),
      sqs.message(undefined, "no-body"),
      sqs.message(s3Body("a%zz"), "bad-key"),
      sqs.message(s3Body(key), "good"),
    ];
    sqs.deliver(...messages);

    expect(await source.pollOnce()).toEqual({ received: 5, handled: 1, malformed: 4, failed: 0 });
    expect(handled).toEqual([[expect.objectContaining({ key })]]);
    expect(sqs.deleted).toEqual(["rh-1", "rh-2", "rh-3", "rh-4", "rh-5"]);
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings.map((w) => w.messageId)).toEqual(["bad-json", "bad-shape", "no-body", "bad-key"]);
    const logged = warnings[1]?.body as string;
    expect(logged.length).toBeLessThan(600);
    expect(logged).toContain(`(${junk.length} chars)`);
  });

  it("leaves a message whose handler failed in the queue, and deletes the rest", async () => {
    const [good, bad] = [originalKey(newImageId()), originalKey(newImageId())];
    const { sqs, source, logs } = harness([], async (events) => {
      if (events.some((e) => e.key === bad)) throw new Error("database unavailable");
    });
    const messages = [sqs.message(s3Body(bad), "fails"), sqs.message(s3Body(good), "works")];
    sqs.deliver(...messages);

    expect(await source.pollOnce()).toEqual({ received: 2, handled: 1, malformed: 0, failed: 1 });
    expect(sqs.deleted).toEqual(["rh-2"]);
    expect(logs.find((l) => l.level === 50)).toMatchObject({
      messageId: "fails",
      receiveCount: "1",
      keys: [bad],
    });
  });

  it("passes duplicate deliveries through: de-duplication happens downstream", async () => {
    const key = originalKey(newImageId());
    const { sqs, source, handled } = harness([]);
    sqs.deliver(sqs.message(s3Body(key), "same"));
    sqs.deliver(sqs.message(s3Body(key), "same"));
    await source.pollOnce();
    await source.pollOnce();
    expect(handled.map((events) => events[0]?.key)).toEqual([key, key]);
    expect(sqs.deleted).toEqual(["rh-1", "rh-2"]);
  });

  it("survives failed deletes: logged, the message simply comes back", async () => {
    const { sqs, source, logs } = harness([]);
    sqs.deliver(sqs.message(s3Body("k1")), sqs.message(s3Body("k2")));
    sqs.failDeleteIds.add("rh-1");
    expect(await source.pollOnce()).toMatchObject({ handled: 2 });
    expect(logs.some((l) => l.level === 40 && l.code === "InternalError")).toBe(true);

    sqs.deliver(sqs.message(s3Body("k3")));
    sqs.deleteFailure = new Error("network down");
    await expect(source.pollOnce()).resolves.toMatchObject({ handled: 1 });
    expect(logs.some((l) => l.level === 40 && l.msg === "deleting storage event messages failed")).toBe(true);
  });
});

describe("SqsEventSource loop", () => {
  it("backs off 1 s doubling to 30 s between failed receives", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(receiveBackoffMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it("keeps polling after receive errors, with growing backoff that resets on success", async () => {
    const key = originalKey(newImageId());
    const { sqs, source, handled, backoffs, logs } = harness([
      { error: new Error("AWS.SimpleQueueService.NonExistentQueue") },
      { error: new Error("socket hang up") },
      { messages: [] },
      { error: new Error("throttled") },
    ]);
    sqs.deliver(sqs.message(s3Body(key)));
    source.start();
    await until(() => handled.length === 1, "the message after the failures");
    await source.stop();
    expect(backoffs).toEqual([1, 2, 1]);
    expect(logs.filter((l) => l.msg === "SQS receive failed; backing off")).toHaveLength(3);
    expect(sqs.deleted).toEqual(["rh-1"]);
  });

  it("stop() aborts the long poll and ends the loop", async () => {
    const { sqs, source } = harness([]);
    source.start();
    source.start(); // idempotent: still one loop
    await until(() => sqs.receives.length === 1, "the long poll");
    await source.stop();
    expect(sqs.lastSignal?.aborted).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(sqs.receives).toHaveLength(1);
  });

  it("stop() lets the batch in hand finish: handled, deleted, then stopped", async () => {
    const key = originalKey(newImageId());
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { sqs, source } = harness([], () => gate);
    sqs.deliver(sqs.message(s3Body(key)));
    source.start();
    await until(() => sqs.timeline.includes(`handle:${key}`), "the handler to start");

    let stopped = false;
    const stopping = source.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(sqs.timeline).toEqual(["receive", `handle:${key}`, "delete:rh-1"]);
  });
});
