import { PutBucketNotificationConfigurationCommand } from "@aws-sdk/client-s3";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { createS3Client, type S3ConnectionOptions } from "./s3-client.ts";

export interface BucketWebhookOptions extends S3ConnectionOptions {
  bucket: string;
  /** Where the storage POSTs its S3-format event records, e.g. https://imgup.example/v1/events/storage?token=… */
  pushEndpoint: string;
  topicName: string;
  /** Only keys ending with this announce themselves, e.g. "/original" so variants never loop back. */
  keySuffix?: string;
  /** Only keys under this deployment's prefix (IMGUP_S3_PREFIX) announce themselves. */
  keyPrefix?: string;
  /** Queue events in the storage and retry until the endpoint accepts them (default true). */
  persistent?: boolean;
}

/**
 * Makes the bucket POST an S3 event record to an HTTP endpoint for every created object. This is
 * Ceph RGW's way: a topic created through RGW's SNS-compatible API on the S3 endpoint itself,
 * with a push-endpoint attribute, then a bucket notification configuration naming that topic.
 * MinIO configures webhook targets server-side (mc admin config set notify_webhook), and AWS S3
 * cannot push to HTTP at all (SQS, SNS or EventBridge instead), so neither goes through here.
 * Idempotent: CreateTopic of an existing name updates its attributes, and RGW merges notification
 * configurations by Id (AWS would replace the whole set), so other notifications stay.
 * RGW sends no Authorization header: a webhook secret has to travel in the push endpoint's query,
 * as a single parameter (RGW stores the endpoint inside an &-separated argument string).
 */
export async function configureBucketWebhook(opts: BucketWebhookOptions): Promise<{ topicArn: string }> {
  return createTopicAndNotify(opts, opts.topicName, {
    "push-endpoint": opts.pushEndpoint,
    // Without it RGW pushes synchronously within the upload request and drops the event
    // when the endpoint is down; persistent topics queue the event and retry it.
    persistent: String(opts.persistent ?? true),
  });
}

/** CreateTopic (RGW's SNS-compatible API on the S3 endpoint) then the bucket notification. */
async function createTopicAndNotify(
  opts: S3ConnectionOptions & { bucket: string; keyPrefix?: string; keySuffix?: string },
  topicName: string,
  attributes: Record<string, string>,
): Promise<{ topicArn: string }> {
  const sns = new SNSClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.accessKeyId && opts.secretAccessKey
      ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
      : {}),
  });
  const s3 = createS3Client(opts);
  try {
    const topic = await sns.send(new CreateTopicCommand({ Name: topicName, Attributes: attributes }));
    const topicArn = topic.TopicArn;
    if (!topicArn) throw new Error("CreateTopic returned no TopicArn");
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: opts.bucket,
        NotificationConfiguration: {
          TopicConfigurations: [
            {
              Id: `${topicName}-created`,
              TopicArn: topicArn,
              Events: ["s3:ObjectCreated:*"],
              ...keyFilter(opts),
            },
          ],
        },
      }),
    );
    return { topicArn };
  } finally {
    sns.destroy();
    s3.destroy();
  }
}

function keyFilter(opts: { keyPrefix?: string; keySuffix?: string }) {
  const rules = [
    ...(opts.keyPrefix ? [{ Name: "prefix" as const, Value: opts.keyPrefix }] : []),
    ...(opts.keySuffix ? [{ Name: "suffix" as const, Value: opts.keySuffix }] : []),
  ];
  return rules.length > 0 ? { Filter: { Key: { FilterRules: rules } } } : {};
}

export interface BucketAmqpOptions extends S3ConnectionOptions {
  bucket: string;
  /**
   * amqp://host:port/vhost as the storage reaches the broker. RGW (before Reef) refuses a
   * user:password in it unless its own endpoint is HTTPS; without one it connects as guest.
   */
  amqpEndpoint: string;
  /** The topic exchange the storage publishes to; the topic name is the routing key. */
  exchange: string;
  topicName: string;
  keySuffix?: string;
  keyPrefix?: string;
}

/**
 * Makes the bucket publish an S3 event record to an AMQP exchange for every created object (RGW's
 * AMQP push). The topic is persistent (RGW queues the event in RADOS and retries it until the
 * broker takes it) with ack level "broker": an event counts as delivered only once RabbitMQ
 * confirmed it, so with a durable queue a broker restart loses nothing.
 */
export async function configureBucketAmqp(opts: BucketAmqpOptions): Promise<{ topicArn: string }> {
  return createTopicAndNotify(opts, opts.topicName, {
    "push-endpoint": opts.amqpEndpoint,
    "amqp-exchange": opts.exchange,
    "amqp-ack-level": "broker",
    persistent: "true",
  });
}
