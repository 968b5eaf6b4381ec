import type { Channel } from "amqplib";

/** Where the storage publishes and where imgup's worker consumes. */
export interface AmqpEventTopology {
  /** The durable queue the worker consumes. */
  queue: string;
  /** Messages that can never be read land here (nack without requeue), kept for inspection. */
  deadLetterQueue: string;
}

export function deadLetterQueueOf(queue: string): string {
  return `${queue}.dead`;
}

/**
 * Declares the event queue and its dead-letter queue. The consumer and `imgup events ceph-amqp`
 * both call it, with the same arguments, so whichever comes first creates them and the other's
 * declaration is a no-op (RabbitMQ refuses a redeclaration with different arguments).
 * Dead-lettering goes through the default exchange straight to the DLQ: no extra exchange to own.
 */
export async function declareEventQueues(channel: Channel, topology: AmqpEventTopology): Promise<void> {
  await channel.assertQueue(topology.deadLetterQueue, { durable: true });
  await channel.assertQueue(topology.queue, {
    durable: true,
    arguments: {
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": topology.deadLetterQueue,
    },
  });
}

/**
 * The exchange the storage publishes to (RGW's amqp-exchange) and the binding to the event queue.
 * RGW routes with the topic name as routing key; a topic exchange bound with that name lets other
 * topics (other buckets, other deployments) share the exchange without reaching this queue.
 */
export async function declareEventExchange(
  channel: Channel,
  opts: { exchange: string; queue: string; routingKey: string },
): Promise<void> {
  await channel.assertExchange(opts.exchange, "topic", { durable: true });
  await channel.bindQueue(opts.queue, opts.exchange, opts.routingKey);
}
