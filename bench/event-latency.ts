/**
 * Upload → ready latency when the storage's own event starts processing (no completion hint), on
 * the Ceph RGW of TEST_S3_*: RGW → RabbitMQ → the worker's AMQP consumer, against RGW → HTTP
 * webhook. `imgup serve` (all roles) on the machine's PostgreSQL and Redis, a photo-like 1200x900 JPEG (~80 KB).
 *   npx tsx bench/event-latency.ts [--runs 20] [--write]
 * RabbitMQ: BENCH_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), a queue and exchange of
 * this run's own in its default vhost, deleted at the end.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { DeleteTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { connect } from "amqplib";
import { cephAmqp } from "../src/events/amqp-setup.ts";
import { configureBucketWebhook } from "../src/storage/s3-notifications.ts";
import { photoLike } from "../test/support/image-builders.ts";
import { s3Env, s3TestConnection, s3TestTarget } from "../test/support/s3-target.ts";
import { backendUrls, checkBackends } from "./lib/backends.ts";
import { onInterrupt } from "./lib/cleanup.ts";
import { startImgupProcess } from "./lib/imgup-process.ts";
import { uploadUntilReady } from "./lib/upload.ts";
import { machineInfo, percentile, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "20" }, write: { type: "boolean" } },
});
const runs = Number(values.runs);
const WARM_UP = 2;
const AMQP_URL = process.env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

const s3 = s3TestConnection();
if (!s3) {
  console.log(
    "event-latency skipped: TEST_S3_ENDPOINT is not set (bash scripts/local-s3.sh start && eval ...)",
  );
  process.exit(0);
}
const backends = backendUrls();
await checkBackends(backends);
const machine = machineInfo();
console.log(machine);
const photo = await photoLike(1200, 900, 3);
const jpeg = new Uint8Array(await photo.jpeg({ quality: 80 }).toBuffer());
const tag = randomBytes(4).toString("hex");
const rows: string[] = [];

async function measure(
  label: string,
  env: Record<string, string>,
  /** Sets up the bucket's notification; returns the topic's ARN (deleted at the end). */
  notify: (baseUrl: string, env: Record<string, string>) => Promise<string>,
) {
  const bucket = await s3TestTarget();
  if (!bucket || !s3) throw new Error("no S3");
  const forgetBucket = onInterrupt(bucket.cleanup);
  const fullEnv = { ...s3Env(bucket, s3), ...env };
  const imgup = await startImgupProcess({ label: "events", role: "all", backends, env: fullEnv });
  let topicArn: string | undefined;
  try {
    topicArn = await notify(imgup.baseUrl, fullEnv);
    const samples: number[] = [];
    for (let i = 0; i < runs + WARM_UP; i++) {
      // The first may wait for RGW to pick up the new topic's queue (its periodic ownership pass).
      const { totalMs } = await uploadUntilReady(imgup.baseUrl, imgup.apiKey, jpeg, {
        contentType: "image/jpeg",
        filename: "bench.jpg",
        timeoutMs: i === 0 ? 120_000 : 60_000,
      });
      if (i >= WARM_UP) samples.push(totalMs);
    }
    const row = `| ${label} | ${(jpeg.length / 1e3).toFixed(0)} KB JPEG | ${runs} | ${percentile(samples, 50).toFixed(0)} | ${percentile(samples, 95).toFixed(0)} | ${Math.max(...samples).toFixed(0)} |`;
    console.log(row);
    rows.push(row);
  } finally {
    await imgup.cleanup();
    if (topicArn) await deleteTopic(topicArn);
    await bucket.cleanup();
    forgetBucket();
  }
}

async function deleteTopic(topicArn: string) {
  if (!s3) return;
  const sns = new SNSClient({
    region: s3.region,
    endpoint: s3.endpoint,
    ...(s3.accessKeyId && s3.secretAccessKey
      ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }
      : {}),
  });
  await sns.send(new DeleteTopicCommand({ TopicArn: topicArn })).catch(() => undefined);
  sns.destroy();
}

const queue = `imgup.bench-${tag}`;
const exchange = `imgup.bench-${tag}`;
const dropQueues = async () => {
  const conn = await connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.deleteQueue(queue);
  await ch.deleteQueue(`${queue}.dead`);
  await ch.deleteExchange(exchange);
  await conn.close();
};
const forgetQueues = onInterrupt(dropQueues);
try {
  const amqpEnv = { IMGUP_EVENTS_AMQP_URL: AMQP_URL, IMGUP_EVENTS_AMQP_QUEUE: queue };
  await measure("RGW → RabbitMQ → worker (AMQP)", amqpEnv, async (_baseUrl, env) => {
    const topic = `imgup-bench-amqp-${tag}`;
    await cephAmqp({ exchange, topic }, { ...env, IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex") });
    return `arn:aws:sns:default::${topic}`;
  });
} finally {
  await dropQueues().catch(() => undefined);
  forgetQueues();
}

const token = randomBytes(16).toString("hex");
await measure(
  "RGW → HTTP webhook (persistent topic)",
  { IMGUP_EVENTS_TOKEN: token },
  async (baseUrl, env) => {
    const topic = `imgup-bench-webhook-${tag}`;
    const { topicArn } = await configureBucketWebhook({
      ...(s3 as NonNullable<typeof s3>),
      bucket: env.S3_BUCKET ?? "",
      topicName: topic,
      pushEndpoint: `${baseUrl}/v1/events/storage?token=${token}`,
      keySuffix: "/upload",
    });
    return topicArn;
  },
);

const table = [
  `\`imgup serve\` (all roles in one process), PostgreSQL + Redis, Ceph RGW (persistent topics); the client sends the intent, PUTs the bytes to RGW and polls GET /v1/images/{id} every 10 ms until \`ready\`. No completion hint: only the storage event starts processing. ${WARM_UP} warm-up uploads per path are not counted.`,
  "",
  "| event path | image | runs | p50 ms | p95 ms | max ms |",
  "|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("event-latency", table, machine);
