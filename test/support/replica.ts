import pg from "pg";
import type { Registry } from "prom-client";
import { missingBackend } from "./backends.ts";
import { eventually } from "./harness.ts";

/**
 * The streaming replica `scripts/local-replica.sh start` makes (DATABASE_REPLICA_URLS, else port
 * 5433): its URL when it answers and is in recovery, else null after announcing a skipped test
 * (with CI=true, an error: CI starts the replica).
 */
export async function replicaUrlOrSkip(): Promise<string | null> {
  const url =
    process.env.DATABASE_REPLICA_URLS?.split(",")[0]?.trim() ||
    (process.env.DATABASE_URL ? withPort(process.env.DATABASE_URL, 5433) : undefined);
  if (!url || !process.env.DATABASE_URL) {
    missingBackend("postgres read replica", "DATABASE_URL and DATABASE_REPLICA_URLS");
    return null;
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const r = await client.query<{ recovery: boolean }>("select pg_is_in_recovery() as recovery");
    if (r.rows[0]?.recovery) return url;
  } catch {
    // Not reachable: reported below.
  } finally {
    await client.end().catch(() => undefined);
  }
  missingBackend("postgres read replica (run scripts/local-replica.sh start)", "DATABASE_REPLICA_URLS");
  return null;
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

/** One connection to a server (primary or replica) for the test's own queries. */
export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Waits until the replica has replayed everything the primary had written when this was called. */
export async function replayed(primary: pg.Client, replica: pg.Client): Promise<void> {
  const target = (await primary.query<{ lsn: string }>("select pg_current_wal_lsn()::text as lsn")).rows[0]
    ?.lsn;
  await eventually(async () => {
    const r = await replica.query<{ done: boolean }>(
      "select pg_last_wal_replay_lsn() >= $1::pg_lsn as done",
      [target],
    );
    return r.rows[0]?.done === true;
  });
}

export async function pauseReplay(replica: pg.Client): Promise<void> {
  await replica.query("select pg_wal_replay_pause()");
  await eventually(async () => {
    const r = await replica.query<{ state: string }>("select pg_get_wal_replay_pause_state() as state");
    return r.rows[0]?.state === "paused";
  });
}

export async function resumeReplay(replica: pg.Client): Promise<void> {
  await replica.query("select pg_wal_replay_resume()");
}

/** Scans of the schema's images table that the replica itself served (its own statistics). */
export async function replicaImageScans(replica: pg.Client, schema: string): Promise<number> {
  // Statistics are a snapshot per transaction: a fresh one each time.
  await replica.query("select pg_stat_clear_snapshot()");
  const r = await replica.query<{ scans: string | null }>(
    "select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as scans from pg_stat_user_tables where schemaname = $1 and relname = 'images'",
    [schema],
  );
  return Number(r.rows[0]?.scans ?? 0);
}

/** A counter's or gauge's value for one label set, from an instance's registry (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return hit?.value ?? 0;
}
