import { setTimeout as sleep } from "node:timers/promises";
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type pino from "pino";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { parseEventMessageText } from "./parse-storage-event.ts";

export interface SqsEventSourceOptions {
  client: Pick<SQSClient, "send">;
  queueUrl: string;
  /** Records the events (as de-duplicated jobs). A rejection leaves the message for a retry. */
  handle: (events: ObjectCreatedEvent[]) => Promise<void>;
  logger: pino.Logger;
  /** Long-poll wait; 20 s is SQS's maximum and the cheapest. */
  waitTimeSeconds?: number;
  /** Messages per receive, 1 to 10. */
  maxMessages?: number;
  /** Overrides the queue's visibility timeout for the messages received. */
  visibilityTimeoutSeconds?: number;
  /** Delay after the n-th consecutive failed receive (n from 1); defaults to receiveBackoffMs. */
  backoff?: (failures: number) => number;
}

export interface PollResult {
  received: number;
  /** Handled (or with nothing to handle) and deleted, or at least asked to be. */
  handled: number;
  /** Unreadable bodies: they can never succeed, so they are deleted too. */
  malformed: number;
  /** The handler threw: left in the queue to reappear after the visibility timeout. */
  failed: number;
}

const MAX_BACKOFF_MS = 30_000;
const LOGGED_BODY_CHARS = 512;
// SQS allows at most 10 entries per DeleteMessageBatch.
const DELETE_BATCH = 10;

/** 1 s, doubling, capped at 30 s: a broken queue costs a request every 30 s, not a tight loop. */
export function receiveBackoffMs(failures: number): number {
  return Math.min(1000 * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS);
}

/**
 * Long-polls an SQS queue fed with storage notifications (S3 direct, via SNS, or EventBridge)
 * and hands their "object created" events to `handle`. A message is deleted only once its events
 * are recorded; delivery is at least once and duplicates are fine, since jobs are de-duplicated
 * downstream.
 */
export class SqsEventSource {
  readonly #opts: SqsEventSourceOptions;
  readonly #log: pino.Logger;
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: SqsEventSourceOptions) {
    const maxMessages = opts.maxMessages ?? 10;
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > 10) {
      throw new Error("maxMessages must be an integer from 1 to 10");
    }
    this.#opts = opts;
    this.#log = opts.logger.child({ component: "sqs-event-source" });
  }

  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.#run(controller.signal);
  }

  /** Aborts the long poll, lets the batch in hand finish (handled and deleted), then resolves. */
  async stop(): Promise<void> {
    this.#controller?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const backoff = this.#opts.backoff ?? receiveBackoffMs;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.pollOnce(signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const delayMs = backoff(failures);
        this.#log.warn({ err, failures, delayMs }, "SQS receive failed; backing off");
        try {
          await sleep(delayMs, undefined, { signal });
        } catch {
          // Aborted by stop(): the loop condition ends it.
        }
      }
    }
  }

  /**
   * One receive and the handling of what it returned. Throws only when the receive itself fails
   * (or is aborted); handler and delete failures are logged and reflected in the result.
   */
  async pollOnce(signal?: AbortSignal): Promise<PollResult> {
    const { client, queueUrl, waitTimeSeconds, maxMessages, visibilityTimeoutSeconds } = this.#opts;
    const received = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: maxMessages ?? 10,
        WaitTimeSeconds: waitTimeSeconds ?? 20,
        ...(visibilityTimeoutSeconds === undefined ? {} : { VisibilityTimeout: visibilityTimeoutSeconds }),
        // How often a message came back tells a transient failure from a poison one in the logs.
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
      signal ? { abortSignal: signal } : {},
    );
    const messages = received.Messages ?? [];
    const result: PollResult = { received: messages.length, handled: 0, malformed: 0, failed: 0 };
    if (messages.length === 0) return result;

    // Messages are independent: one slow or failing handler must not hold the others back.
    const outcomes = await Promise.all(messages.map((message) => this.#process(message)));
    const done: Message[] = [];
    outcomes.forEach((outcome, i) => {
      result[outcome]++;
      if (outcome !== "failed") done.push(messages[i] as Message);
    });
    // Deliberately not aborted by stop(): a batch that was handled must also be acknowledged.
    await this.#delete(done);
    return result;
  }

  async #process(message: Message): Promise<"handled" | "malformed" | "failed"> {
    const messageId = message.MessageId;
    let events: ObjectCreatedEvent[];
    try {
      events = this.#parse(message.Body);
    } catch (err) {
      this.#log.warn(
        {
          messageId,
          body: truncate(message.Body),
          reason: err instanceof Error ? err.message : String(err),
        },
        "malformed storage event message; deleting it",
      );
      return "malformed";
    }
    if (events.length === 0) {
      this.#log.debug({ messageId }, "storage event message without created objects");
      return "handled";
    }
    try {
      await this.#opts.handle(events);
      return "handled";
    } catch (err) {
      const receiveCount = message.Attributes?.ApproximateReceiveCount;
      this.#log.error(
        { err, messageId, receiveCount, keys: events.map((e) => e.key) },
        "handling storage events failed; the message will be retried",
      );
      return "failed";
    }
  }

  #parse(body: string | undefined): ObjectCreatedEvent[] {
    if (body === undefined) throw new Error("the message has no body");
    return parseEventMessageText(body);
  }

  async #delete(messages: Message[]): Promise<void> {
    const entries = messages.flatMap((m, i) =>
      m.ReceiptHandle === undefined ? [] : [{ Id: String(i), ReceiptHandle: m.ReceiptHandle }],
    );
    for (let start = 0; start < entries.length; start += DELETE_BATCH) {
      const batch = entries.slice(start, start + DELETE_BATCH);
      try {
        const res = await this.#opts.client.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.#opts.queueUrl, Entries: batch }),
        );
        for (const failed of res.Failed ?? []) {
          const message = messages[Number(failed.Id)];
          this.#log.warn(
            { messageId: message?.MessageId, code: failed.Code, reason: failed.Message },
            "could not delete a storage event message; it will be delivered again",
          );
        }
      } catch (err) {
        // Not fatal: the messages reappear after the visibility timeout and are handled again.
        this.#log.warn({ err, count: batch.length }, "deleting storage event messages failed");
      }
    }
  }
}

function truncate(body: string | undefined): string | undefined {
  if (body === undefined || body.length <= LOGGED_BODY_CHARS) return body;
  return `${body.slice(0, LOGGED_BODY_CHARS)}… (${body.length} chars)`;
}
