/**
 * A scripted stand-in for SQSClient, because no SQS (nor LocalStack/ElasticMQ) can run where these
 * tests run: `send` inspects the command class and answers with AWS-shaped responses.
 */
import {
  DeleteMessageBatchCommand,
  type DeleteMessageBatchCommandOutput,
  type Message,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { expect } from "vitest";

export const QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/imgup-storage-events";

export type Step = { messages: Message[] } | { error: Error };

/** Scripted SQS: each receive takes the next step; when the script runs out it long-polls until aborted. */
export class StubSqs {
  readonly timeline: string[] = [];
  readonly receives: ReceiveMessageCommand[] = [];
  readonly deleted: string[] = [];
  deleteFailure: Error | undefined;
  failDeleteIds = new Set<string>();
  lastSignal: AbortSignal | undefined;
  #counter = 0;

  constructor(readonly script: Step[]) {}

  /** Queues one receive that returns these messages. */
  deliver(...messages: Message[]): void {
    this.script.push({ messages });
  }

  asClient(): Pick<SQSClient, "send"> {
    return this as unknown as Pick<SQSClient, "send">;
  }

  async send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    if (command instanceof ReceiveMessageCommand) return this.#receive(command, options?.abortSignal);
    if (command instanceof DeleteMessageBatchCommand) return this.#delete(command);
    throw new Error(`unexpected command ${String(command)}`);
  }

  async #receive(command: ReceiveMessageCommand, signal?: AbortSignal): Promise<ReceiveMessageCommandOutput> {
    this.receives.push(command);
    this.lastSignal = signal;
    this.timeline.push("receive");
    const step = this.script.shift();
    if (step && "error" in step) throw step.error;
    if (step) return { Messages: step.messages, $metadata: { httpStatusCode: 200 } };
    if (!signal) return { $metadata: { httpStatusCode: 200 } };
    return new Promise((_resolve, reject) => {
      const abort = () => reject(Object.assign(new Error("Request aborted"), { name: "AbortError" }));
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    });
  }

  async #delete(command: DeleteMessageBatchCommand): Promise<DeleteMessageBatchCommandOutput> {
    expect(command.input.QueueUrl).toBe(QUEUE_URL);
    const handles = (command.input.Entries ?? []).map((e) => e.ReceiptHandle ?? "");
    this.timeline.push(`delete:${handles.join(",")}`);
    if (this.deleteFailure) throw this.deleteFailure;
    const entries = command.input.Entries ?? [];
    const failed = entries.filter((e) => this.failDeleteIds.has(e.ReceiptHandle ?? ""));
    this.deleted.push(...handles.filter((h) => !this.failDeleteIds.has(h)));
    return {
      Successful: entries.filter((e) => !failed.includes(e)).map((e) => ({ Id: e.Id })),
      Failed: failed.map((e) => ({
        Id: e.Id,
        SenderFault: false,
        Code: "InternalError",
        Message: "try again",
      })),
      $metadata: { httpStatusCode: 200 },
    };
  }

  message(body: string | undefined, id?: string): Message {
    const n = ++this.#counter;
    return {
      MessageId: id ?? `msg-${n}`,
      ReceiptHandle: `rh-${n}`,
      ...(body === undefined ? {} : { Body: body }),
      Attributes: { ApproximateReceiveCount: "1" },
    };
  }
}
