import { connect } from "amqplib";
import { UsageError } from "../cli/errors.ts";
import { loadConfig } from "../config.ts";
import { UPLOAD_KEY_SUFFIX } from "../domain/keys.ts";
import { normalizeKeyPrefix } from "../storage/s3.ts";
import { configureBucketAmqp } from "../storage/s3-notifications.ts";
import { describeAmqpUrl } from "./amqp-event-source.ts";
import { deadLetterQueueOf, declareEventExchange, declareEventQueues } from "./amqp-topology.ts";

export interface CephAmqpOptions {
  /** The exchange RGW publishes to. */
  exchange: string;
  topic: string;
  /** The broker as RGW reaches it; default: IMGUP_EVENTS_AMQP_URL without its credentials. */
  pushEndpoint?: string;
}

/**
 * `imgup events ceph-amqp`: declares exchange, queue, dead-letter queue and binding on the broker
 * of IMGUP_EVENTS_AMQP_URL, then points the Ceph bucket's upload notifications at the exchange.
 * Idempotent: every declaration and RGW's CreateTopic accept a repeat with the same settings.
 */
export async function cephAmqp(opts: CephAmqpOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadConfig(env);
  if (config.storage.driver !== "s3") {
    throw new UsageError("IMGUP_STORAGE=s3 (and the S3_* variables) must point at the Ceph bucket");
  }
  const { amqpUrl, amqpQueue: queue } = config.events;
  if (!amqpUrl) throw new UsageError("IMGUP_EVENTS_AMQP_URL must name the broker the worker consumes from");
  const connection = await connect(amqpUrl);
  try {
    const channel = await connection.createChannel();
    await declareEventQueues(channel, { queue, deadLetterQueue: deadLetterQueueOf(queue) });
    await declareEventExchange(channel, { exchange: opts.exchange, queue, routingKey: opts.topic });
    await channel.close();
  } finally {
    await connection.close().catch(() => undefined);
  }
  const pushEndpoint = opts.pushEndpoint ?? withoutCredentials(amqpUrl);
  const { topicArn } = await configureBucketAmqp({
    ...config.storage.s3,
    amqpEndpoint: pushEndpoint,
    exchange: opts.exchange,
    topicName: opts.topic,
    keySuffix: UPLOAD_KEY_SUFFIX,
    keyPrefix: normalizeKeyPrefix(config.storage.s3.keyPrefix),
  });
  console.log(
    `bucket ${config.storage.s3.bucket} notifies ${topicArn} -> ${describeAmqpUrl(pushEndpoint)} ` +
      `exchange ${opts.exchange} -> queue ${queue} (dead letters: ${deadLetterQueueOf(queue)})`,
  );
  return 0;
}

/**
 * RGW before Reef refuses a push endpoint with a password unless its own endpoint is HTTPS, and
 * then connects as guest: fine where broker and RGW share a host (guest is loopback-only).
 */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  // RGW reads "host/" as the vhost "" (which does not exist) and keeps failing; no path is "/".
  return u.pathname === "/" ? u.toString().replace(/\/$/, "") : u.toString();
}
