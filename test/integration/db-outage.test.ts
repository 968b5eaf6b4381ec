import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUFFER_STREAM } from "../../src/services/intent-buffer.ts";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import type { LoadMessage, LoadOutcome, LoadProgress } from "../support/intent-load-child.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const url = process.env.DATABASE_URL;
// With DATABASE_URL the API port's /metrics needs the ops token.
const OPS_TOKEN = "ops-token-for-the-outage-test-0123";
// Defaults are the scenario; shorten locally with IMGUP_OUTAGE_SECONDS / IMGUP_OUTAGE_RATE.
const OUTAGE_SECONDS = Number(process.env.IMGUP_OUTAGE_SECONDS ?? 30);
const RATE = Number(process.env.IMGUP_OUTAGE_RATE ?? 200);
// Every acknowledged intent is checked in the database; this many of them (IMGUP_OUTAGE_UPLOADS,
// `all` for every one) are uploaded and awaited until ready. Processing all ~6,000 would take CI
// minutes on 2 cores to check the same path again; the sample keeps the edges (see uploadSample).
const UPLOADS =
  process.env.IMGUP_OUTAGE_UPLOADS === "all"
    ? Number.POSITIVE_INFINITY
    : Number(process.env.IMGUP_OUTAGE_UPLOADS ?? 600);
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
        IMGUP_OPS_TOKEN: OPS_TOKEN,
        IMGUP_RATE_LIMIT_PER_SEC: "100000",
        IMGUP_RATE_LIMIT_BURST: "100000",
        IMGUP_DB_BREAKER_FAILURES: "3",
        IMGUP_DB_BREAKER_HALF_OPEN_MS: "1000",
        IMGUP_DB_QUERY_TIMEOUT_MS: "2000",
        DATABASE_CONNECT_TIMEOUT_MS: "1000",
        IMGUP_WORKER_CONCURRENCY: "8",
        // One owner made every intent: fairness between owners is not under test, throughput is.
        IMGUP_WORKER_OWNER_CONCURRENCY: "8",
        DATABASE_POOL_SIZE: "20",
        // The generator's connections all come from 127.0.0.1; the per-address cap is not under test.
        IMGUP_MAX_CONNECTIONS_PER_IP: "1000000",
      },
      // A Redis command timed out under a loaded machine may still have been applied (a buffered
      // intent answered 503): the buffer's accounting below needs answers, not a deadline.
      { kvCommandTimeoutMs: 120_000 },
    );
  });

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

    const load = startLoad(run.baseUrl, run.alice, RATE, body);
    try {
      // Events, not durations: the database answers under load before the cut...
      await eventually(async () => (load.progress?.byStatus["201"] ?? 0) >= Math.min(50, RATE), 120_000);
      load.phase("outage");
      step("database cut off");
      await proxy.stop();
      // ...the breaker opens (reported by its gauge: 2 = open) and the buffer takes intents.
      await eventually(async () => (await gauge(run.baseUrl, "imgup_db_breaker_state")) === 2, 120_000);
      await eventually(async () => (await run.imgup.intentBuffer.length()) > 0, 120_000);
      // The outage itself lasts the scenario's time: a load duration, not something waited for.
      await delay(OUTAGE_SECONDS * 1000);
    } finally {
      load.stop();
    }
    step("load stopped; waiting for requests in flight");
    const outcomes = await load.outcomes;
    // Every request in flight has been answered; the database is still cut off.
    const breakerDuringOutage = run.imgup.breaker.state;
    const bufferedDuringOutage = await run.imgup.intentBuffer.length();
    const bufferedIds = (await run.imgup.kv.streamRange(BUFFER_STREAM, bufferedDuringOutage + 1)).map(
      (e) => (JSON.parse(e.payload) as { image: { id: string } }).image.id,
    );
    await proxy.start();
    step(`database back; draining ${bufferedDuringOutage} buffered intents`);
    // No more load after recovery: the buffer must drain (and the breaker close) on its own.
    await untilNoneLeft(() => run.imgup.intentBuffer.length(), 120_000);

    const ok = outcomes.filter((o) => o.status === 201 && o.id && o.upload);
    const failed = outcomes.filter((o) => o.status !== 201);
    const ids = ok.map((o) => o.id as string);
    const db = run.imgup.database.db;
    const inDb = await db.selectFrom("images").select("id").where("id", "in", ids).execute();

    const uploaded = uploadSample(ok, bufferedIds, UPLOADS);
    const uploadedIds = uploaded.map((o) => o.id as string);
    step(`uploading ${uploaded.length} of the ${ok.length} acknowledged images`);
    for (let i = 0; i < uploaded.length; i += 32) {
      await Promise.all(
        uploaded.slice(i, i + 32).map((o) => putTo(o.upload as Parameters<typeof putTo>[0], png)),
      );
    }
    const readyCount = async () =>
      Number(
        (
          await db
            .selectFrom("images")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .where("id", "in", uploadedIds)
            .where("status", "=", "ready")
            .executeTakeFirstOrThrow()
        ).n,
      );
    step("waiting for processing");
    // Images on a loaded machine take what they take: fail only when progress stops.
    await untilNoneLeft(async () => uploadedIds.length - (await readyCount()), 120_000).catch(async (err) => {
      const byStatus = await db
        .selectFrom("images")
        .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
        .where("id", "in", uploadedIds)
        .groupBy("status")
        .execute();
      throw new Error(`${String(err)}; images by status: ${JSON.stringify(byStatus)}`);
    });

    const acceptedDuringOutage = ok.filter((o) => o.phase === "outage").length;
    const report = {
      sent: outcomes.length,
      acknowledged: ok.length,
      acceptedDuringOutage,
      refused: failed.length,
      refusedStatuses: [...new Set(failed.map((f) => f.status))],
      refusedCodes: [...new Set(failed.map((f) => f.code ?? "none"))],
      bufferedDuringOutage,
      breakerDuringOutage,
      rowsAfterRecovery: inDb.length,
      uploaded: uploaded.length,
      uploadedFromBuffer: uploadedIds.filter((id) => bufferedIds.includes(id)).length,
      ready: await readyCount(),
    };
    console.log("db outage:", JSON.stringify(report));
    // The invariants: every acknowledged intent is in the database (nothing lost) and becomes ready.
    expect(new Set(inDb.map((r) => r.id))).toEqual(new Set(ids));
    expect(report.ready).toBe(uploaded.length);
    expect(report.uploadedFromBuffer).toBeGreaterThan(0);
    // The buffer holds only intents the client was told about (one the client gave up on, status 0,
    // may have been buffered too, as may one whose KV write timed out), so never more than were
    // accepted; and it did absorb the outage.
    const okIds = new Set(ids);
    const unacknowledged = bufferedIds.filter((id) => !okIds.has(id)).length;
    expect(bufferedIds).toHaveLength(bufferedDuringOutage);
    expect(unacknowledged).toBeLessThanOrEqual(failed.filter((f) => f.status === 0).length);
    expect(bufferedDuringOutage).toBeGreaterThan(0);
    expect(acceptedDuringOutage).toBeGreaterThan(0);
    // Open, or half-open while the drainer's once-a-second probe is in flight; never closed.
    expect(["open", "half-open"]).toContain(breakerDuringOutage);
    // A request is buffered or refused with 503, never anything else (0: the client gave up).
    expect(failed.every((f) => f.status === 0 || f.status === 503)).toBe(true);
  }, 3_600_000); // only a stall fails it (untilNoneLeft); a loaded machine may take long
});

interface Load {
  progress: LoadProgress | undefined;
  phase: (name: string) => void;
  stop: () => void;
  outcomes: Promise<LoadOutcome[]>;
}

/** The load generator runs in a child process (see intent-load-child.ts). */
function startLoad(baseUrl: string, key: string, rate: number, body: object): Load {
  const child = fork(
    path.resolve("test/support/intent-load-child.ts"),
    [baseUrl, key, String(rate), JSON.stringify(body)],
    { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const load: Load = {
    progress: undefined,
    phase: (name) => child.send({ phase: name }),
    stop: () => {
      if (child.connected) child.send({ stop: true });
    },
    outcomes: new Promise((resolve, reject) => {
      child.on("message", (m: LoadMessage) => {
        if ("progress" in m) load.progress = m.progress;
        else {
          resolve(m.outcomes);
          child.kill();
        }
      });
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`load generator exited (${code}) without outcomes`)));
    }),
  };
  return load;
}

/**
 * The acknowledged intents to upload: with `n` below their number, each phase's first and last 50
 * and the buffer's first and last 50 (where an off-by-one or a lost tail would show), then others
 * at random.
 */
function uploadSample(ok: LoadOutcome[], bufferedIds: string[], n: number): LoadOutcome[] {
  if (n >= ok.length) return ok;
  const chosen = new Set<LoadOutcome>();
  const byId = new Map(ok.map((o) => [o.id, o]));
  for (const phase of new Set(ok.map((o) => o.phase))) {
    const inPhase = ok.filter((o) => o.phase === phase);
    for (const o of [...inPhase.slice(0, 50), ...inPhase.slice(-50)]) chosen.add(o);
  }
  for (const id of [...bufferedIds.slice(0, 50), ...bufferedIds.slice(-50)]) {
    const o = byId.get(id);
    if (o) chosen.add(o);
  }
  const rest = ok.filter((o) => !chosen.has(o));
  while (chosen.size < n && rest.length > 0) {
    chosen.add(rest.splice(Math.floor(Math.random() * rest.length), 1)[0] as LoadOutcome);
  }
  return [...chosen];
}

/**
 * Waits until remaining() is 0. However long a loaded machine takes, only a stall fails it: no
 * decrease for stallMs.
 */
async function untilNoneLeft(remaining: () => Promise<number>, stallMs: number): Promise<void> {
  let least = Number.POSITIVE_INFINITY;
  let movedAt = Date.now();
  for (;;) {
    const n = await remaining();
    if (n === 0) return;
    if (n < least) {
      least = n;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      throw new Error(`stuck with ${n} left for ${stallMs} ms`);
    }
    await delay(250);
  }
}

/** Where a slow run spends its time, for whoever reads a CI log. */
function step(what: string): void {
  console.log(`db outage: ${new Date().toISOString()} ${what}`);
}

/** One unlabelled sample from /metrics. */
async function gauge(baseUrl: string, name: string): Promise<number | undefined> {
  const headers = { authorization: `Bearer ${OPS_TOKEN}` };
  const text = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}
