import { type RawBuilder, sql } from "kysely";
import type { Db } from "../db/schema.ts";
import type { ClaimedJob, JobInfo, JobQueue, NewJob, QueueStats } from "./job-queue.ts";

const MAX_ERROR_LENGTH = 2000;

interface ClaimedRow {
  id: number | string;
  kind: string;
  key: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  lease_token: string;
}

/**
 * JobQueue on the `jobs` table. Every time comparison uses the database clock (`now()`), so workers on
 * machines with skewed clocks still agree on who holds a lease. Works the same on PostgreSQL and PGlite.
 */
export class PostgresJobQueue implements JobQueue {
  readonly #db: Db;
  readonly #defaultMaxAttempts: number;
  readonly #perGroupConcurrency: number;

  constructor(opts: {
    db: Db;
    defaultMaxAttempts: number;
    /** Jobs of one group running at once across every claimer of this table (unbounded when unset). */
    perGroupConcurrency?: number;
  }) {
    this.#db = opts.db;
    this.#defaultMaxAttempts = opts.defaultMaxAttempts;
    this.#perGroupConcurrency = Math.max(1, opts.perGroupConcurrency ?? 2 ** 31 - 1);
  }

  #row(job: NewJob) {
    return {
      kind: job.kind,
      key: job.key,
      payload: JSON.stringify(job.payload),
      status: "queued",
      max_attempts: job.maxAttempts ?? this.#defaultMaxAttempts,
      run_at: job.runAt ?? sql<Date>`now()`,
      group_key: job.group ?? null,
    };
  }

  async enqueue(job: NewJob): Promise<{ id: string; created: boolean }> {
    const inserted = await this.#db
      .insertInto("jobs")
      .values(this.#row(job))
      .onConflict((oc) => oc.column("key").doNothing())
      .returning("id")
      .executeTakeFirst();
    if (inserted) return { id: String(inserted.id), created: true };
    // A separate statement: under READ COMMITTED it sees a conflicting row committed after the INSERT's
    // snapshot, which a CTE in the same statement would not.
    const existing = await this.#db
      .selectFrom("jobs")
      .select("id")
      .where("key", "=", job.key)
      .executeTakeFirstOrThrow();
    return { id: String(existing.id), created: false };
  }

  async requeue(job: NewJob): Promise<{ id: string }> {
    const row = await this.#db
      .insertInto("jobs")
      .values(this.#row(job))
      .onConflict((oc) =>
        oc.column("key").doUpdateSet((eb) => ({
          kind: eb.ref("excluded.kind"),
          payload: eb.ref("excluded.payload"),
          status: "queued",
          attempts: 0,
          max_attempts: eb.ref("excluded.max_attempts"),
          run_at: eb.ref("excluded.run_at"),
          group_key: eb.ref("excluded.group_key"),
          locked_until: null,
          lease_token: null,
          last_error: null,
          updated_at: sql<Date>`now()`,
        })),
      )
      .returning("id")
      .executeTakeFirstOrThrow();
    return { id: String(row.id) };
  }

  async claim(opts: { kinds: string[]; limit: number; leaseMs: number }): Promise<ClaimedJob[]> {
    if (opts.kinds.length === 0 || opts.limit <= 0) return [];
    // Claims take turns cluster-wide (a transaction-scoped advisory lock, per schema): the per-group
    // count below must include what the previous claimer just leased, which two overlapping
    // snapshots would both miss. A claim is one short statement, so the wait is milliseconds.
    const rows = await this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(current_schema() || '.jobs.claim'))`.execute(trx);
      return (await this.#claimStatement(opts).execute(trx)).rows;
    });
    return rows.map((r) => ({
      id: String(r.id),
      kind: r.kind,
      key: r.key,
      payload: toPayload(r.payload),
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      leaseToken: r.lease_token,
    }));
  }

  #claimStatement(opts: { kinds: string[]; limit: number; leaseMs: number }) {
    const kinds = sql.join(opts.kinds);
    // One statement, so a crash between steps cannot strand a job. `reaped` dead-letters lapsed leases
    // that have no attempts left (the worker probably crashed on them every time). `busy` counts each
    // group's jobs holding a live lease; `ranked` numbers a group's runnable jobs oldest first, so a
    // job's `slot` is how many of its group would run if it were taken: a group at its cap is skipped,
    // and the lowest slots go first (round-robin between groups, then oldest). An ungrouped job is
    // its own group. SKIP LOCKED passes over rows a complete/fail/extend is updating right now.
    return sql<ClaimedRow>`
      with reaped as (
        update jobs set
          status = 'dead',
          locked_until = null,
          lease_token = null,
          last_error = 'lease expired on attempt ' || attempts || ' of ' || max_attempts,
          updated_at = now()
        where id in (
          select id from jobs
          where kind in (${kinds}) and status = 'running' and locked_until < now()
            and attempts >= max_attempts
          for update skip locked
        )
        returning id
      ),
      busy as (
        select group_key, count(*) as n from jobs
        where status = 'running' and locked_until >= now() and group_key is not null
        group by group_key
      ),
      ranked as (
        select j.id, j.run_at,
          case when j.group_key is null then 1
            else coalesce(b.n, 0) + row_number() over (partition by j.group_key order by j.run_at, j.id)
          end as slot
        from jobs j left join busy b on b.group_key = j.group_key
        where j.kind in (${kinds})
          and ((j.status = 'queued' and j.run_at <= now())
            or (j.status = 'running' and j.locked_until < now() and j.attempts < j.max_attempts))
      ),
      picked as (
        select id from ranked
        where slot <= ${this.#perGroupConcurrency}
        order by slot, run_at, id
        limit ${opts.limit}
      ),
      due as (
        -- Checked again on the locked row: a complete or release may have committed meanwhile.
        select id from jobs
        where id in (select id from picked)
          and ((status = 'queued' and run_at <= now())
            or (status = 'running' and locked_until < now() and attempts < max_attempts))
        for update skip locked
      )
      update jobs j set
        status = 'running',
        attempts = j.attempts + 1,
        locked_until = now() + ${interval(opts.leaseMs)},
        lease_token = gen_random_uuid()::text,
        updated_at = now()
      from due
      where j.id = due.id
      returning j.id, j.kind, j.key, j.payload, j.attempts, j.max_attempts, j.lease_token
    `;
  }

  async complete(job: ClaimedJob): Promise<boolean> {
    const row = await this.#db
      .updateTable("jobs")
      .set({ status: "done", locked_until: null, lease_token: null, updated_at: sql<Date>`now()` })
      .where(holdsLease(job))
      .returning("id")
      .executeTakeFirst();
    return row !== undefined;
  }

  async fail(
    job: ClaimedJob,
    error: string,
    retryInMs: number | null,
  ): Promise<"retrying" | "dead" | "lost"> {
    // attempts is read from the row, not from the caller's copy, so the decision cannot be based on stale data.
    const dead = retryInMs === null ? sql<boolean>`true` : sql<boolean>`attempts >= max_attempts`;
    const row = await this.#db
      .updateTable("jobs")
      .set({
        status: sql<string>`case when ${dead} then 'dead' else 'queued' end`,
        run_at:
          retryInMs === null
            ? sql<Date>`run_at`
            : sql<Date>`case when ${dead} then run_at else now() + ${interval(retryInMs)} end`,
        locked_until: null,
        lease_token: null,
        last_error: error.slice(0, MAX_ERROR_LENGTH),
        updated_at: sql<Date>`now()`,
      })
      .where(holdsLease(job))
      .returning("status")
      .executeTakeFirst();
    if (!row) return "lost";
    return row.status === "dead" ? "dead" : "retrying";
  }

  async extendLease(job: ClaimedJob, leaseMs: number): Promise<boolean> {
    const row = await this.#db
      .updateTable("jobs")
      .set({ locked_until: sql<Date>`now() + ${interval(leaseMs)}`, updated_at: sql<Date>`now()` })
      .where(holdsLease(job))
      .returning("id")
      .executeTakeFirst();
    return row !== undefined;
  }

  async release(job: ClaimedJob, opts: { delayMs?: number; error?: string } = {}): Promise<boolean> {
    const delayMs = Math.max(0, Math.round(opts.delayMs ?? 0));
    const row = await this.#db
      .updateTable("jobs")
      .set({
        status: "queued",
        attempts: sql<number>`greatest(attempts - 1, 0)`,
        run_at:
          delayMs > 0
            ? sql<Date>`now() + make_interval(secs => ${delayMs / 1000})`
            : sql<Date>`least(run_at, now())`,
        ...(opts.error !== undefined ? { last_error: opts.error.slice(0, 2000) } : {}),
        locked_until: null,
        lease_token: null,
        updated_at: sql<Date>`now()`,
      })
      .where(holdsLease(job))
      .returning("id")
      .executeTakeFirst();
    return row !== undefined;
  }

  async get(key: string): Promise<JobInfo | null> {
    const row = await this.#db
      .selectFrom("jobs")
      .select(["id", "kind", "key", "status", "attempts", "max_attempts", "last_error", "run_at"])
      .where("key", "=", key)
      .executeTakeFirst();
    if (!row) return null;
    return {
      id: String(row.id),
      kind: row.kind,
      key: row.key,
      status: row.status as JobInfo["status"],
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
      lastError: row.last_error,
      runAt: row.run_at,
    };
  }

  async stats(): Promise<QueueStats> {
    // Done jobs pile up; the status filter keeps this on the (status, run_at) index.
    const result = await sql<{ queued: number; running: number; dead: number; oldest_ms: number }>`
      select
        (count(*) filter (where status = 'queued'))::int as queued,
        (count(*) filter (where status = 'running'))::int as running,
        (count(*) filter (where status = 'dead'))::int as dead,
        coalesce(
          extract(epoch from now() - min(run_at) filter (where status = 'queued' and run_at <= now())) * 1000,
          0
        )::float8 as oldest_ms
      from jobs
      where status in ('queued', 'running', 'dead')
    `.execute(this.#db);
    const r = result.rows[0];
    return {
      queued: r?.queued ?? 0,
      running: r?.running ?? 0,
      dead: r?.dead ?? 0,
      oldestQueuedAgeMs: Math.max(0, Math.round(r?.oldest_ms ?? 0)),
    };
  }
}

/**
 * The job is still leased to this holder. Raw because schema.ts nests ColumnType inside Generated for
 * `id`, which leaves no usable operand type for a typed comparison.
 */
function holdsLease(job: ClaimedJob): RawBuilder<boolean> {
  return sql<boolean>`id = ${Number(job.id)} and lease_token = ${job.leaseToken} and status = 'running'`;
}

/** Milliseconds as an interval; the explicit cast spares both drivers from guessing the parameter type. */
function interval(ms: number): RawBuilder<unknown> {
  return sql`(${Math.max(0, ms)}::float8 * interval '1 millisecond')`;
}

function toPayload(value: unknown): Record<string, unknown> {
  // Both pg and PGlite parse jsonb; a string here would mean a driver returned raw text.
  const parsed = typeof value === "string" ? JSON.parse(value) : value;
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("job payload is not a JSON object");
  }
  return parsed as Record<string, unknown>;
}
