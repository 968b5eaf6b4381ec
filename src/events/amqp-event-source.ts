import { setTimeout as sleep } from "node:timers/promises";
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from "amqplib";
import type pino from "pino";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { bodyForLog, parseAmqpEventMessage } from "./amqp-message.ts";
import type { AmqpEventMetrics } from "./amqp-metrics.ts";
import { deadLetterQueueOf, declareEventQueues } from "./amqp-topology.ts";

export interface AmqpEventSourceOptions {
  /** amqp://user:pass@host:port/vhost; it carries a password, so it is never logged. */
  url: string;
  queue: string;
  /** Unacknowledged messages in hand at once. */
  prefetch: number;
  /** Records the events (as de-duplicated jobs). A rejection means "not recorded": requeued. */
  handle: (events: ObjectCreatedEvent[]) => Promise<void>;
  logger: pino.Logger;
  metrics: AmqpEventMetrics;
  /** Delay before the n-th consecutive reconnect (n from 1), and before requeueing after n failures. */
  backoff?: (failures: number) => number;
}

const MAX_BACKOFF_MS = 30_000;

/** 0.5 s, doubling, capped at 30 s. */
export function amqpBackoffMs(failures: number): number {
  return Math.min(500 * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS);
}

/** The broker's address without credentials, for logs and readiness. */
export function describeAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "" ? "/" : u.pathname}`;
  } catch {
    return "(unparseable AMQP URL)";
  }
}

/**
 * Consumes storage notifications (S3 event JSON, as Ceph RGW, MinIO and others publish them) from
 * a durable RabbitMQ queue. A message is acked only once its events are recorded; when recording
 * fails it is requeued after a backoff (holding its prefetch slot meanwhile, so a database outage
 * does not spin); an unreadable one is nacked into the dead-letter queue. Delivery is at least once
 * (a crash between recording and ack redelivers) and the job key de-duplicates.
 * The connection is re-established with backoff whenever it drops; nothing here throws into the
 * process.
 */
export class AmqpEventSource {
  readonly #opts: AmqpEventSourceOptions;
  readonly #log: pino.Logger;
  readonly #backoff: (failures: number) => number;
  readonly #inFlight = new Set<Promise<void>>();
  #connection: ChannelModel | undefined;
  #channel: Channel | undefined;
  #consumerTag: string | undefined;
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #lastError = "not connected yet";
  #handleFailures = 0;

  constructor(opts: AmqpEventSourceOptions) {
    if (!Number.isInteger(opts.prefetch) || opts.prefetch < 1) {
      throw new Error("prefetch must be a positive integer");
    }
    this.#opts = opts;
    this.#log = opts.logger.child({ component: "amqp-event-source", broker: describeAmqpUrl(opts.url) });
    this.#backoff = opts.backoff ?? amqpBackoffMs;
  }

  get connected(): boolean {
    return this.#consumerTag !== undefined;
  }

  /** For /readyz: resolves while consuming, throws why not otherwise. */
  async check(): Promise<void> {
    if (!this.connected) throw new Error(`AMQP event queue not consumed: ${this.#lastError}`);
  }

  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.#run(controller.signal);
  }

  /** Stops consuming, lets the messages in hand finish (and be acked), then closes the connection. */
  async stop(): Promise<void> {
    this.#controller?.abort();
    const channel = this.#channel;
    const tag = this.#consumerTag;
    if (channel && tag) await channel.cancel(tag).catch(() => undefined);
    await Promise.allSettled([...this.#inFlight]);
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let closed: Promise<void>;
      try {
        ({ closed } = await this.#connect());
        failures = 0;
      } catch (err) {
        this.#lastError = err instanceof Error ? err.message : String(err);
        await this.#disconnect();
        if (signal.aborted) break;
        failures++;
        const delayMs = this.#backoff(failures);
        this.#log.warn({ err: this.#lastError, failures, delayMs }, "AMQP connect failed; backing off");
        await sleep(delayMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      // Until the broker goes away or stop() is called.
      await Promise.race([closed, abortion(signal)]);
      // On stop, messages in hand get their ack before the connection closes.
      if (signal.aborted) await Promise.allSettled([...this.#inFlight]);
      await this.#disconnect();
      if (!signal.aborted) {
        failures++;
        const delayMs = this.#backoff(failures);
        this.#log.warn({ err: this.#lastError, delayMs }, "AMQP connection lost; reconnecting");
        await sleep(delayMs, undefined, { signal }).catch(() => undefined);
      }
    }
    await this.#disconnect();
  }

  /** Connects and starts consuming; the promise it returns settles when the connection is gone. */
  async #connect(): Promise<{ closed: Promise<void> }> {
    const connection = await connect(this.#opts.url);
    this.#connection = connection;
    const closed = new Promise<void>((resolve) => {
      // 'error' always comes with a 'close'; without a listener it would crash the process.
      connection.on("error", (err: Error) => {
        this.#lastError = err.message;
      });
      connection.on("close", () => resolve());
    });
    const channel = await connection.createChannel();
    this.#channel = channel;
    channel.on("error", (err: Error) => {
      this.#lastError = err.message;
    });
    // A channel closed by the broker (e.g. a queue deleted under us) leaves the connection
    // open but useless: close it too, so the loop reconnects and redeclares.
    channel.on("close", () => {
      if (this.#channel === channel) void connection.close().catch(() => undefined);
    });
    const { queue } = this.#opts;
    await declareEventQueues(channel, { queue, deadLetterQueue: deadLetterQueueOf(queue) });
    await channel.prefetch(this.#opts.prefetch);
    const { consumerTag } = await channel.consume(queue, (msg) => {
      if (msg) this.#track(this.#onMessage(channel, msg));
    });
    this.#consumerTag = consumerTag;
    this.#opts.metrics.connected.set(1);
    this.#log.info({ queue, prefetch: this.#opts.prefetch }, "consuming storage events from AMQP");
    return { closed };
  }

  async #disconnect(): Promise<void> {
    this.#consumerTag = undefined;
    this.#opts.metrics.connected.set(0);
    const connection = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    await connection?.close().catch(() => undefined);
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }

  async #onMessage(channel: Channel, msg: ConsumeMessage): Promise<void> {
    const { messages } = this.#opts.metrics;
    let events: ObjectCreatedEvent[];
    try {
      events = parseAmqpEventMessage(msg.content);
    } catch (err) {
      this.#log.warn(
        { body: bodyForLog(msg.content), reason: err instanceof Error ? err.message : String(err) },
        "unreadable storage event message; dead-lettering it",
      );
      messages.inc({ outcome: "dead_lettered" });
      settle(() => channel.nack(msg, false, false));
      return;
    }
    try {
      if (events.length > 0) await this.#opts.handle(events);
      this.#handleFailures = 0;
      messages.inc({ outcome: "handled" });
      settle(() => channel.ack(msg));
    } catch (err) {
      this.#handleFailures++;
      const delayMs = this.#backoff(this.#handleFailures);
      this.#log.error(
        { err, keys: events.map((e) => e.key), redelivered: msg.fields.redelivered, delayMs },
        "recording storage events failed; the message will be requeued",
      );
      messages.inc({ outcome: "requeued" });
      // Held (unacked) meanwhile: an outage slows the consumer down instead of spinning it.
      await sleep(delayMs, undefined, { signal: this.#controller?.signal }).catch(() => undefined);
      settle(() => channel.nack(msg, false, true));
    }
  }
}

/**
 * Acks and nacks on a channel that has since closed throw; the broker has already put the message
 * back for redelivery then, which de-duplication makes harmless.
 */
function settle(action: () => void): void {
  try {
    action();
  } catch {
    // Channel gone: redelivered on the next connection.
  }
}

function abortion(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
