import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UPLOAD_KEY_SUFFIX } from "../../src/domain/keys.ts";
import { configureBucketWebhook } from "../../src/storage/s3-notifications.ts";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const url = process.env.DATABASE_URL;
// What matters is that RGW's events arrive while the database is down, not for how long (the
// local-storage variant, db-outage-uploads, holds the 30 s).
const OUTAGE_SECONDS = Number(process.env.IMGUP_RGW_OUTAGE_SECONDS ?? 5);
const TOKEN = randomBytes(16).toString("hex");
const BEFORE = 5;
const DURING = 5;
const connection = s3TestConnection();
const kvTarget = kvEnvTargets().at(-1);

/**
 * Ceph RGW pushes its bucket notifications to the webhook while PostgreSQL is cut off: the webhook
 * answers 2xx only because each event is buffered, and every upload is ready after recovery with
 * the reconciler off.
 */
describe.skipIf(!url || !kvTarget || !connection)("RGW webhook events during a database outage", () => {
  const proxy = new TcpProxy("127.0.0.1", url ? Number(new URL(url).port || 5432) : 5432);
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const kv = kvTarget?.make();
  let bucket: S3TestTarget;
  let run: Running;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection) throw new Error("no S3 target");
    bucket = target;
    const port = await proxy.start();
    const proxied = new URL(url as string);
    proxied.host = `127.0.0.1:${port}`;
    run = await startImgup(
      {
        name: "postgres",
        env: { DATABASE_URL: proxied.toString(), DATABASE_SCHEMA: schema },
        cleanup: async () => {},
      },
      {
        ...kv?.env,
        ...s3Env(target, connection),
        IMGUP_EVENTS_TOKEN: TOKEN,
        IMGUP_DB_BREAKER_FAILURES: "3",
        IMGUP_DB_BREAKER_HALF_OPEN_MS: "2000",
        IMGUP_DB_QUERY_TIMEOUT_MS: "3000",
        DATABASE_CONNECT_TIMEOUT_MS: "1000",
        IMGUP_RECONCILE_INTERVAL_MS: String(24 * 3600_000),
      },
    );
    await configureBucketWebhook({
      ...connection,
      bucket: target.options.bucket,
      topicName: `imgup-outage-${randomBytes(4).toString("hex")}`,
      pushEndpoint: `${run.baseUrl}/v1/events/storage?token=${TOKEN}`,
      keySuffix: UPLOAD_KEY_SUFFIX,
    });
  }, 120_000);

  afterAll(async () => {
    await proxy.start().catch(() => undefined);
    await run?.stop();
    await bucket?.cleanup();
    await kv?.flush();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
    await proxy.stop();
  }, 120_000);

  it("every object uploaded to RGW during the outage is ready after it", async () => {
    const api = new Api(run.baseUrl, run.alice);
    const png = await makeImage("png", 8, 8);
    const create = async () => {
      const r = await api.createIntent({ filename: "r.png", contentType: "image/png", size: png.length });
      expect(r.status).toBe(201);
      return r.body;
    };
    // RGW takes up to ~30 s to use a new persistent topic: one upload made ready first shows it does.
    const warm = await create();
    expect((await putTo(warm.upload, png)).status).toBe(200);
    expect((await api.settled(warm.image.id, 120_000)).status).toBe("ready");

    const before = [];
    for (let i = 0; i < BEFORE; i++) before.push(await create());
    await proxy.stop();
    await eventually(async () => run.imgup.breaker.state === "open", 120_000);
    const during = [];
    for (let i = 0; i < DURING; i++) during.push(await create());
    for (const intent of [...before, ...during]) expect((await putTo(intent.upload, png)).status).toBe(200);
    // RGW's events arrive and are buffered (the webhook's 2xx): DURING intents, and one event per upload.
    const expected = DURING + BEFORE + DURING;
    await eventually(async () => (await run.imgup.intentBuffer.length()) >= expected, 120_000);
    await delay(OUTAGE_SECONDS * 1000);
    await proxy.start();

    const ids = [...before, ...during].map((i) => i.image.id);
    const db = run.imgup.database.db;
    const statuses = async () =>
      db.selectFrom("images").select(["id", "status"]).where("id", "in", ids).execute();
    await eventually(async () => {
      const rows = await statuses();
      return rows.length === ids.length && rows.every((r) => r.status === "ready");
    }, 180_000).catch(async (err) => {
      throw new Error(`${String(err)}; images: ${JSON.stringify(await statuses())}`);
    });
    expect(await run.imgup.intentBuffer.length()).toBe(0);
    expect(await run.imgup.intentBuffer.deadLetterCount()).toBe(0);
  }, 600_000);
});
