import { randomBytes } from "node:crypto";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ownerWindowKey } from "../../src/db/replica-routing.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, kvEnvTargets, type Running, startImgup } from "../support/harness.ts";
import {
  connect,
  metricValue,
  pauseReplay,
  replayed,
  replicaImageScans,
  replicaUrlOrSkip,
  resumeReplay,
} from "../support/replica.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const primaryUrl = process.env.DATABASE_URL;
const replicaUrl = await replicaUrlOrSkip();
const kvTarget = kvEnvTargets().at(-1);

/**
 * Against the real streaming replica of scripts/local-replica.sh, reached through a proxy this file
 * can cut (the shared replica itself is never stopped). Replay is paused to make the replica's rows
 * differ from the primary's: what a request answers then shows which server served it.
 */
describe.skipIf(!primaryUrl || !replicaUrl)("read replicas", () => {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const proxy = new TcpProxy("127.0.0.1", replicaUrl ? Number(new URL(replicaUrl).port) : 5433);
  const kv = kvTarget?.make();
  let primary: pg.Client;
  let replica: pg.Client;
  /** A replica within a generous lag bound: a paused replay stays "healthy" for the whole test. */
  let run: Running;
  let alice: Api;
  let ready: ImageJson;

  const start = (env: Record<string, string>) => {
    const proxied = new URL(replicaUrl as string);
    proxied.host = `127.0.0.1:${proxy.port}`;
    return startImgup(
      {
        name: "postgres",
        env: { DATABASE_URL: primaryUrl as string, DATABASE_SCHEMA: schema },
        cleanup: async () => {},
      },
      {
        ...kv?.env,
        DATABASE_REPLICA_URLS: proxied.toString(),
        IMGUP_REPLICA_CHECK_INTERVAL_MS: "100",
        IMGUP_REPLICA_QUERY_TIMEOUT_MS: "2000",
        // Every delivery lookup reaches the database (no per-instance record cache in between).
        IMGUP_RECORD_CACHE_ENTRIES: "0",
        ...env,
      },
    );
  };
  const reads = (target: "replica" | "primary") =>
    metricValue(run.imgup.metrics.registry, "imgup_db_replica_reads_total", { target });
  const healthy = (r: Running) => metricValue(r.imgup.metrics.registry, "imgup_db_replica_healthy", {});
  /** As if the owner's read-your-writes window had run out. */
  const closeWindow = (r: Running, owner: string) => r.imgup.kv.delete(ownerWindowKey(owner));

  beforeAll(async () => {
    await proxy.start();
    primary = await connect(primaryUrl as string);
    replica = await connect(replicaUrl as string);
    run = await start({
      IMGUP_REPLICA_MAX_LAG_MS: "600000",
      IMGUP_REPLICA_PRIMARY_WINDOW_MS: "601000",
    });
    alice = new Api(run.baseUrl, run.alice);
    const bytes = await makeImage("jpeg", 64, 48);
    const { intent } = await alice.uploadBytes(bytes, { filename: "ready.jpg", contentType: "image/jpeg" });
    ready = await alice.settled(intent.image.id);
    expect(ready.status).toBe("ready");
    await replayed(primary, replica);
    await eventually(async () => (await healthy(run)) === 1);
  });

  afterEach(async () => {
    // A failed test must not leave the shared replica paused or cut off.
    await resumeReplay(replica).catch(() => undefined);
    await proxy.start().catch(() => undefined);
  });

  afterAll(async () => {
    await resumeReplay(replica).catch(() => undefined);
    await run?.stop();
    await kv?.flush();
    await primary?.query(`drop schema if exists "${schema}" cascade`);
    await primary?.end();
    await replica?.end();
    await proxy.stop();
  });

  it("serves owner listings, lookups and delivery from the replica", async () => {
    await closeWindow(run, "alice");
    const scansBefore = await replicaImageScans(replica, schema);
    const replicaReadsBefore = await reads("replica");
    // Replay paused, the primary changes the row behind the service's back (no window, no cache bump).
    await pauseReplay(replica);
    await primary.query(
      `update "${schema}".images set filename = 'changed-on-primary.jpg', visibility = 'private' where id = $1`,
      [ready.id],
    );
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images");
    expect(listed.status).toBe(200);
    expect(listed.body.items.find((i) => i.id === ready.id)?.filename).toBe("ready.jpg");
    const got = await alice.getImage(ready.id);
    expect(got.body.filename).toBe("ready.jpg");
    // Delivery: the primary says private (unsigned: 404); the replica still says public.
    const original = await fetch(ready.urls?.original as string);
    expect(original.status).toBe(200);
    expect(await reads("replica")).toBeGreaterThanOrEqual(replicaReadsBefore + 3);
    // The replica's own statistics count those scans of the images table.
    await eventually(async () => (await replicaImageScans(replica, schema)) >= scansBefore + 3);

    await resumeReplay(replica);
    await replayed(primary, replica);
    await eventually(async () => {
      const r = await alice.getImage(ready.id);
      return r.body.filename === "changed-on-primary.jpg";
    });
    expect((await fetch(ready.urls?.original as string)).status).toBe(404);
    await primary.query(
      `update "${schema}".images set filename = 'ready.jpg', visibility = 'public' where id = $1`,
      [ready.id],
    );
    await closeWindow(run, "alice");
  });

  it("shows an owner their new upload at once, while the replica is behind", async () => {
    await pauseReplay(replica);
    const primaryReadsBefore = await reads("primary");
    const created = await alice.createIntent({ filename: "new.jpg", contentType: "image/jpeg", size: 1234 });
    expect(created.status).toBe(201);
    const id = created.body.image.id;
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images");
    expect(listed.body.items.map((i) => i.id)).toContain(id);
    const got = await alice.getImage(id);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe("pending");
    expect(await reads("primary")).toBeGreaterThanOrEqual(primaryReadsBefore + 2);
    // The replica really lacks it: without the window the listing would have missed it.
    const onReplica = await replica.query(`select 1 from "${schema}".images where id = $1`, [id]);
    expect(onReplica.rowCount).toBe(0);
    await resumeReplay(replica);
  });

  it("shows an owner their claim at once (a write outside the images repository)", async () => {
    await replayed(primary, replica);
    await closeWindow(run, "alice");
    await pauseReplay(replica);
    const claimed = await alice.request("POST", `/v1/images/${ready.id}/claim`, {
      json: { ref: "order-17" },
    });
    expect(claimed.status).toBe(200);
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images?ref=order-17");
    expect(listed.body.items.map((i) => i.id)).toEqual([ready.id]);
    await resumeReplay(replica);
  });

  it("keeps delivering and listing when the replica is cut off, and uses it again once back", async () => {
    await replayed(primary, replica);
    await closeWindow(run, "alice");
    await proxy.stop();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(ready.urls?.original as string);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images");
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((i) => i.id)).toContain(ready.id);
    await eventually(async () => (await healthy(run)) === 0);

    await proxy.start();
    await eventually(async () => (await healthy(run)) === 1);
    const before = await reads("replica");
    expect((await fetch(ready.urls?.original as string)).status).toBe(200);
    expect(await reads("replica")).toBe(before + 1);
  });

  describe("with a tight lag bound", () => {
    let tight: Running;

    beforeAll(async () => {
      tight = await start({
        IMGUP_REPLICA_MAX_LAG_MS: "300",
        IMGUP_REPLICA_PRIMARY_WINDOW_MS: "400",
      });
      await eventually(async () => (await healthy(tight)) === 1);
    });

    afterAll(async () => {
      // The schema is the outer run's: only this instance's process goes.
      await tight?.stop();
    });

    it("skips a replica whose replay is paused once it lags beyond the bound", async () => {
      const api = new Api(tight.baseUrl, tight.alice);
      await pauseReplay(replica);
      await primary.query(`update "${schema}".images set filename = 'after-pause.jpg' where id = $1`, [
        ready.id,
      ]);
      await eventually(async () => (await healthy(tight)) === 0);
      await closeWindow(tight, "alice");
      const got = await api.getImage(ready.id);
      expect(got.body.filename).toBe("after-pause.jpg");
      await resumeReplay(replica);
      await eventually(async () => (await healthy(tight)) === 1);
      await primary.query(`update "${schema}".images set filename = 'ready.jpg' where id = $1`, [ready.id]);
    });
  });
});
