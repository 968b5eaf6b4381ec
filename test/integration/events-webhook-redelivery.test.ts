import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { DeleteTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UPLOAD_KEY_SUFFIX } from "../../src/domain/keys.ts";
import { configureBucketWebhook } from "../../src/storage/s3-notifications.ts";
import { Api, type IntentResponse, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import {
  type DbTarget,
  dbTargets,
  eventually,
  freePort,
  type KvEnvTarget,
  kvEnvTargets,
} from "../support/harness.ts";
import { type RoleProcess, startRole } from "../support/role-process.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const db = dbTargets().find((t) => t.name === "postgres");
const redis = kvEnvTargets().find((t) => t.name === "redis");
const connection = s3TestConnection();
const TOKEN = randomBytes(16).toString("hex");

/**
 * What a load balancer or nginx in front does while every API process is down: accept the
 * connection and answer 502. RGW 16.2 retries a persistent topic's event after an HTTP error, but
 * after a refused connection its queue stops for good (docs/operations.md, "Ceph RGW, webhook"),
 * so the documented setup points RGW at the front, never at an API process.
 */
function startFront(port: number, upstreamPort: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: "127.0.0.1", port: upstreamPort, path: req.url, method: req.method, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.on("error", () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

/**
 * The webhook setup (`imgup events ceph-webhook`, a persistent RGW topic) with the API down while
 * uploads land: RGW pushes the events again once the API is back. API and worker are `imgup
 * serve` child processes; no scheduler runs, so no reconciler.
 */
describe.skipIf(!db || !redis || !connection)("webhook redelivery by RGW's persistent topic", () => {
  let database: DbTarget;
  let kv: KvEnvTarget;
  let bucket: S3TestTarget;
  let env: Record<string, string>;
  let apiKey: string;
  let topicArn: string | undefined;
  let front: http.Server | undefined;
  const procs = new Set<RoleProcess>();
  let api: RoleProcess;
  let image: Buffer;

  const client = () => new Api(env.IMGUP_PUBLIC_URL ?? "", apiKey);
  const ready = (ids: string[]) =>
    eventually(async () => {
      for (const id of ids) if ((await client().getImage(id)).body.status !== "ready") return false;
      return true;
    }, 180_000);

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!db || !redis || !connection || !target) throw new Error("no backends");
    bucket = target;
    database = db.make();
    kv = redis.make();
    image = await makeImage("jpeg", 64, 48);
    // Fixed addresses: the restarted API must answer on the port the front forwards to.
    const apiPort = await freePort();
    const frontPort = await freePort();
    front = await startFront(frontPort, apiPort);
    env = {
      ...database.env,
      ...kv.env,
      ...s3Env(bucket, connection),
      PORT: String(apiPort),
      IMGUP_PUBLIC_URL: `http://127.0.0.1:${frontPort}`,
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_EVENTS_TOKEN: TOKEN,
      IMGUP_JOB_POLL_MS: "100",
      LOG_LEVEL: "warn",
    };
    const topic = `imgup-t-${randomBytes(6).toString("hex")}`;
    ({ topicArn } = await configureBucketWebhook({
      ...connection,
      bucket: bucket.options.bucket,
      topicName: topic,
      pushEndpoint: `http://127.0.0.1:${frontPort}/v1/events/storage?token=${TOKEN}`,
      keySuffix: UPLOAD_KEY_SUFFIX,
    }));
    api = await startRole("api", { ...env, IMGUP_DEV_KEY: "true" });
    procs.add(api);
    apiKey = (await readFile(path.join(api.dataDir, "dev-api-key"), "utf8")).trim();
    procs.add(await startRole("worker", env));
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...procs].map((p) => p.stop()));
    front?.close();
    if (topicArn && connection) {
      const sns = new SNSClient({
        region: connection.region,
        endpoint: connection.endpoint,
        ...(connection.accessKeyId && connection.secretAccessKey
          ? {
              credentials: {
                accessKeyId: connection.accessKeyId,
                secretAccessKey: connection.secretAccessKey,
              },
            }
          : {}),
      });
      await sns.send(new DeleteTopicCommand({ TopicArn: topicArn })).catch(() => undefined);
      sns.destroy();
    }
    await database?.cleanup();
    await kv?.flush();
    await bucket?.cleanup();
  }, 120_000);

  it("API down ~10 s while 10 uploads land: all ready after it is back, from RGW's redelivery alone", async () => {
    // The path works (and RGW has picked up the new topic's queue) before the outage.
    const first = await client().uploadBytes(image, { contentType: "image/jpeg", filename: "w.jpg" });
    expect(first.put.status).toBe(200);
    await ready([first.intent.image.id]);

    const batch: IntentResponse[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await client().createIntent({
        size: image.length,
        contentType: "image/jpeg",
        filename: `w${i}.jpg`,
      });
      expect(r.status).toBe(201);
      batch.push(r.body);
    }
    await api.stop();
    procs.delete(api);
    const downAt = Date.now();
    for (const b of batch) expect((await putTo(b.upload, image)).status).toBe(200);
    // The outage is the scenario itself, not a wait for something: RGW fails and must retry later.
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downAt))));
    api = await startRole("api", env);
    procs.add(api);
    const up = Date.now();
    await ready(batch.map((b) => b.image.id));
    console.log(
      `events-webhook-redelivery: 10 uploads ready ${((Date.now() - up) / 1000).toFixed(1)} s after the API answered again`,
    );
  }, 400_000);
});
