import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import { WalSamples } from "./replica-lag.ts";
import type { Database, Db } from "./schema.ts";

export interface ReplicaSetOptions {
  /** The primary (DATABASE_URL): one connection of its own reads its WAL position at each check. */
  primaryUrl: string;
  urls: readonly string[];
  schema: string;
  poolSize: number;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  maxLagMs: number;
  checkIntervalMs: number;
  /** Where the replicas' healthy gauge goes (index and host:port, never credentials). */
  onHealth?: (label: string, healthy: boolean) => void;
  now?: () => number;
}

export interface Replica {
  /** host:port/database: for logs and metrics, without credentials. */
  readonly label: string;
  readonly db: Db;
}

interface ReplicaState extends Replica {
  healthy: boolean;
  lagMs: number | null;
}

const INT8_OID = 20;

/**
 * The read replicas and their health, measured every check interval: a replica is healthy when it
 * answers, is in recovery (not promoted), and lags by at most maxLagMs. The lag is the smaller of
 * two upper bounds: the age of the newest primary WAL position (sampled each check) the replica has
 * replayed, and the age of the last transaction it replayed. An idle primary does not make a
 * caught-up replica look behind: its replay position equals the primary's, lag 0. Until the first
 * check answers, no replica is used.
 */
export class ReplicaSet {
  private readonly replicas: ReplicaState[];
  /** Its own connection: a primary pool saturated by requests must not delay or fail the check. */
  private readonly primary: Db;
  private readonly samples: WalSamples;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private next = 0;

  constructor(
    private readonly opts: ReplicaSetOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
    this.samples = new WalSamples(2 * opts.maxLagMs + 2 * opts.checkIntervalMs);
    this.replicas = opts.urls.map((url) => openReplica(url, opts));
    this.primary = openReplica(opts.primaryUrl, { ...opts, poolSize: 1 }).db;
  }

  /** A healthy replica, round robin; null when none is (the caller reads the primary). */
  pick(): Replica | null {
    const n = this.replicas.length;
    for (let i = 0; i < n; i++) {
      const r = this.replicas[(this.next + i) % n] as ReplicaState;
      if (r.healthy) {
        this.next = (this.next + i + 1) % n;
        return r;
      }
    }
    return null;
  }

  /** A read on it failed: skipped until a check finds it well again. */
  failed(replica: Replica, err: unknown): void {
    const r = this.replicas.find((x) => x === replica);
    if (!r?.healthy) return;
    this.log.warn({ replica: r.label, err: errorMessage(err) }, "read replica failed; reading the primary");
    this.setHealth(r, false, r.lagMs);
  }

  /** Health of each replica as last measured (tests, readiness). */
  status(): Array<{ label: string; healthy: boolean; lagMs: number | null }> {
    return this.replicas.map((r) => ({ label: r.label, healthy: r.healthy, lagMs: r.lagMs }));
  }

  /** Runs the first check, then one every interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.opts.checkIntervalMs);
    this.timer.unref();
  }

  /** One measurement of every replica; overlapping calls share it. */
  check(): Promise<void> {
    this.checking ??= this.measure().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    await Promise.all(
      [...this.replicas, { db: this.primary }].map((r) => r.db.destroy().catch(() => undefined)),
    );
  }

  private async measure(): Promise<void> {
    const primaryLsn = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`
      .execute(this.primary)
      .then((r) => parseLsn(r.rows[0]?.lsn))
      .catch(() => null);
    // Without the primary's answer the samples so far still bound the lag (exact in a primary outage,
    // where nothing new is written); with none at all, no replica is used.
    if (primaryLsn !== null) this.samples.add(this.now(), primaryLsn);
    await Promise.all(this.replicas.map((r) => this.measureOne(r)));
  }

  private async measureOne(r: ReplicaState): Promise<void> {
    try {
      const row = (
        await sql<{ recovery: boolean; replayed: string | null; sinceXactMs: number | null }>`
          select pg_is_in_recovery() as recovery, pg_last_wal_replay_lsn()::text as replayed,
            (extract(epoch from (now() - pg_last_xact_replay_timestamp())) * 1000)::float8 as "sinceXactMs"`.execute(
          r.db,
        )
      ).rows[0];
      if (!row?.recovery) {
        if (r.healthy || r.lagMs === null)
          this.log.warn({ replica: r.label }, "read replica is not in recovery (promoted?): not used");
        this.setHealth(r, false, null);
        return;
      }
      const lag = this.samples.lagMs(parseLsn(row.replayed), row.sinceXactMs, this.now());
      this.setHealth(r, lag <= this.opts.maxLagMs, lag);
    } catch (err) {
      if (r.healthy) this.log.warn({ replica: r.label, err: errorMessage(err) }, "read replica unreachable");
      this.setHealth(r, false, null);
    }
  }

  private setHealth(r: ReplicaState, healthy: boolean, lagMs: number | null): void {
    if (r.healthy !== healthy && healthy) this.log.info({ replica: r.label, lagMs }, "read replica in use");
    if (r.healthy !== healthy && !healthy && lagMs !== null)
      this.log.warn({ replica: r.label, lagMs }, "read replica lags beyond its bound: skipped");
    r.healthy = healthy;
    r.lagMs = lagMs;
    this.opts.onHealth?.(r.label, healthy);
  }
}

/** A pool on a read-only server: no schema creation, a client-side bound on every query. */
function openReplica(url: string, opts: ReplicaSetOptions): ReplicaState {
  const pool = new pg.Pool({
    connectionString: url,
    connectionTimeoutMillis: Math.min(opts.connectTimeoutMs, opts.queryTimeoutMs),
    max: opts.poolSize,
    query_timeout: opts.queryTimeoutMs,
    statement_timeout: opts.queryTimeoutMs,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
    options: `-c search_path="${opts.schema}" -c default_transaction_read_only=on`,
  });
  // As for the primary: a dead server's "error" events must not kill the process.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => client.on("error", () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { label: replicaLabel(url), db, healthy: false, lagMs: null };
}

export function replicaLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "replica";
  }
}

export function parseLsn(text: string | null | undefined): bigint | null {
  const m = text ? /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(text) : null;
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
