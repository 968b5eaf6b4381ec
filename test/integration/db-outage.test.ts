import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const url = process.env.DATABASE_URL;
// Defaults are the scenario; shorten locally with IMGUP_OUTAGE_SECONDS / IMGUP_OUTAGE_RATE.
const OUTAGE_SECONDS = Number(process.env.IMGUP_OUTAGE_SECONDS ?? 30);
const RATE = Number(process.env.IMGUP_OUTAGE_RATE ?? 200);
const kvTarget = kvEnvTargets().at(-1);

/**
 * PostgreSQL made unreachable (through a proxy we cut, not by touching the shared server) while a
 * load generator creates intents: every intent that got a 2xx must exist afterwards and its upload
 * must become ready.
 */
describe.skipIf(!url || !kvTarget)("a database outage under load", () => {
  const proxy = new TcpProxy("127.0.0.1", url ? Number(new URL(url).port || 5432) : 5432);
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const kv = kvTarget?.make();
  let run: Running;

  beforeAll(async () => {
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
        IMGUP_RATE_LIMIT_PER_SEC: "100000",
        IMGUP_RATE_LIMIT_BURST: "100000",
        IMGUP_DB_BREAKER_FAILURES: "3",
        IMGUP_DB_BREAKER_HALF_OPEN_MS: "1000",
        IMGUP_DB_QUERY_TIMEOUT_MS: "2000",
        DATABASE_CONNECT_TIMEOUT_MS: "1000",
        IMGUP_WORKER_CONCURRENCY: "8",
        DATABASE_POOL_SIZE: "20",
      },
    );
  }, 60_000);

  afterAll(async () => {
    await proxy.start().catch(() => undefined);
    await run?.stop();
    await kv?.flush();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
    await proxy.stop();
  });

  it(`keeps every acknowledged intent through a ${OUTAGE_SECONDS}s outage at ${RATE} intents/s`, async () => {
    const api = new Api(run.baseUrl, run.alice);
    const png = await makeImage("png", 8, 8);
    const body = { filename: "o.png", contentType: "image/png", size: png.length };
    expect((await api.createIntent(body)).status).toBe(201); // warms the API-key cache

    const outcomes: { status: number; id?: string; upload?: Parameters<typeof putTo>[0] }[] = [];
    const inflight = new Set<Promise<void>>();
    const fire = () => {
      const p = api
        .createIntent(body)
        .then((r) => void outcomes.push({ status: r.status, id: r.body.image?.id, upload: r.body.upload }))
        .catch(() => void outcomes.push({ status: 0 }));
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };
    const phase = async (ms: number) => {
      const started = Date.now();
      let sent = 0;
      while (Date.now() - started < ms) {
        const due = Math.floor(((Date.now() - started) / 1000) * RATE);
        for (; sent < due; sent++) fire();
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    await phase(2_000);
    await proxy.stop();
    await phase(OUTAGE_SECONDS * 1000);
    const breakerDuringOutage = run.imgup.breaker.state;
    const bufferedDuringOutage = await run.imgup.intentBuffer.length();
    await proxy.start();
    // No more load after recovery: the buffer must drain (and the breaker close) on its own.
    await Promise.all(inflight);

    const ok = outcomes.filter((o) => o.status === 201 && o.id && o.upload);
    const failed = outcomes.filter((o) => o.status !== 201);
    await eventually(async () => (await run.imgup.intentBuffer.length()) === 0, 60_000);
    const ids = ok.map((o) => o.id as string);
    const db = run.imgup.database.db;
    const inDb = await db.selectFrom("images").select("id").where("id", "in", ids).execute();

    for (let i = 0; i < ok.length; i += 32) {
      await Promise.all(ok.slice(i, i + 32).map((o) => putTo(o.upload as Parameters<typeof putTo>[0], png)));
    }
    const readyCount = async () =>
      Number(
        (
          await db
            .selectFrom("images")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .where("id", "in", ids)
            .where("status", "=", "ready")
            .executeTakeFirstOrThrow()
        ).n,
      );
    await eventually(async () => (await readyCount()) === ids.length, 240_000);

    const report = {
      sent: outcomes.length,
      acknowledged: ok.length,
      refused: failed.length,
      refusedStatuses: [...new Set(failed.map((f) => f.status))],
      bufferedDuringOutage,
      breakerDuringOutage,
      rowsAfterRecovery: inDb.length,
      ready: await readyCount(),
    };
    console.log("db outage:", JSON.stringify(report));
    // The invariants: every acknowledged intent is in the database and becomes ready.
    expect(inDb.length).toBe(ok.length);
    expect(report.ready).toBe(ok.length);
    // And the outage really was absorbed, not refused. The generator shares this process (and, in
    // CI, the machine with another test file), so on a loaded machine some requests fail on the
    // client side (status 0); the bounds are loose on purpose and the counts are reported.
    // Open, or half-open while the drainer's once-a-second probe is in flight; never closed.
    expect(["open", "half-open"]).toContain(breakerDuringOutage);
    expect(bufferedDuringOutage).toBeGreaterThan(RATE * OUTAGE_SECONDS * 0.25);
    expect(ok.length).toBeGreaterThan(outcomes.length * 0.5);
    expect(failed.every((f) => f.status === 0 || f.status === 503)).toBe(true);
  }, 600_000);
});
