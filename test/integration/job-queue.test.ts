import { setTimeout as delay } from "node:timers/promises";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/db/schema.ts";
import type { ClaimedJob } from "../../src/jobs/job-queue.ts";
import { DeferJobError, type JobHandler, JobRunner, PermanentJobError } from "../../src/jobs/job-runner.ts";
import { PostgresJobQueue } from "../../src/jobs/postgres-job-queue.ts";
import { databaseTargets } from "../support/databases.ts";

const LONG_LEASE = 30_000;
const SHORT_LEASE = 250;

/** Polls until check() is truthy; generous timeout because CI machines stall. */
async function waitFor<T>(check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("waitFor timed out");
    await delay(25);
  }
}

describe.each(databaseTargets())("PostgresJobQueue on $name", ({ open }) => {
  let queue: PostgresJobQueue;
  let queueDb: Db;
  let cleanup: () => Promise<void>;
  const claim = (leaseMs = LONG_LEASE, limit = 10, kinds = ["k"]) => queue.claim({ kinds, limit, leaseMs });
  const enqueue = (key: string, extra: { runAt?: Date; maxAttempts?: number } = {}) =>
    queue.enqueue({ kind: "k", key, payload: { key }, ...extra });
  const status = async (key: string) => (await queue.get(key))?.status;

  beforeAll(async () => {
    const opened = await open();
    cleanup = opened.cleanup;
    queue = new PostgresJobQueue({ db: opened.handle.db, defaultMaxAttempts: 5 });
    queueDb = opened.handle.db;
  });
  afterAll(async () => {
    await cleanup?.();
  });
  beforeEach(async () => {
    await queueDb.deleteFrom("jobs").execute();
  });

  it("de-duplicates enqueues by key", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => enqueue("dup")));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    const rows = await queueDb.selectFrom("jobs").select("id").execute();
    expect(rows).toHaveLength(1);
  });

  it("leases a job to one claimer, round-trips the payload and completes it", async () => {
    const payload = { imageId: "img-1", nested: { n: 1, list: [1, "two", null] } };
    await queue.enqueue({ kind: "k", key: "a", payload });
    expect(await claim(LONG_LEASE, 10, ["other"])).toEqual([]);
    const [job, ...rest] = await claim();
    expect(rest).toEqual([]);
    expect(job).toMatchObject({ kind: "k", key: "a", payload, attempts: 1, maxAttempts: 5 });
    expect(job?.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(await claim()).toEqual([]);
    expect(await status("a")).toBe("running");
    expect(await queue.complete(job as ClaimedJob)).toBe(true);
    expect(await status("a")).toBe("done");
    expect(await queue.complete(job as ClaimedJob)).toBe(false);
    expect(await claim()).toEqual([]);
  });

  it("retries a failed job after the delay", async () => {
    await enqueue("r");
    const [job] = await claim();
    expect(await queue.fail(job as ClaimedJob, "oops", 500)).toBe("retrying");
    expect(await queue.get("r")).toMatchObject({ status: "queued", lastError: "oops", attempts: 1 });
    expect(await claim()).toEqual([]);
    const again = await waitFor(async () => (await claim())[0]);
    expect(again).toMatchObject({ key: "r", attempts: 2 });
  });

  it("dead-letters when attempts are used up or the error is permanent", async () => {
    await enqueue("x", { maxAttempts: 2 });
    const [first] = await claim();
    expect(await queue.fail(first as ClaimedJob, "e1", 0)).toBe("retrying");
    const second = await waitFor(async () => (await claim())[0]);
    expect(second?.attempts).toBe(2);
    expect(await queue.fail(second as ClaimedJob, "e2", 0)).toBe("dead");
    expect(await queue.get("x")).toMatchObject({ status: "dead", attempts: 2, lastError: "e2" });

    await enqueue("p");
    const [p] = await claim();
    expect(await queue.fail(p as ClaimedJob, "bad input", null)).toBe("dead");
    expect(await claim()).toEqual([]);
  });

  it("hands a lapsed lease to another claimer and ignores the old holder", async () => {
    await enqueue("l");
    const [old] = await claim(SHORT_LEASE);
    const fresh = await waitFor(async () => (await claim())[0]);
    expect(fresh).toMatchObject({ id: old?.id, attempts: 2 });
    expect(fresh?.leaseToken).not.toBe(old?.leaseToken);
    expect(await queue.complete(old as ClaimedJob)).toBe(false);
    expect(await queue.fail(old as ClaimedJob, "stale", 0)).toBe("lost");
    expect(await queue.extendLease(old as ClaimedJob, LONG_LEASE)).toBe(false);
    expect(await queue.extendLease(fresh as ClaimedJob, LONG_LEASE)).toBe(true);
    expect(await queue.complete(fresh as ClaimedJob)).toBe(true);
  });

  it("dead-letters a lapsed lease that has no attempts left", async () => {
    await enqueue("m", { maxAttempts: 1 });
    await claim(SHORT_LEASE);
    await waitFor(async () => (await claim()).length === 0 && (await status("m")) === "dead");
    expect((await queue.get("m"))?.lastError).toMatch(/lease expired/);
  });

  it("never hands one job to two concurrent claimers", async () => {
    for (let i = 0; i < 10; i++) await enqueue(`c${i}`);
    const batches = await Promise.all(Array.from({ length: 5 }, () => claim(LONG_LEASE, 3)));
    const ids = batches.flat().map((j) => j.id);
    // Under contention a claimer may get fewer rows than free ones exist; the rest must still be claimable.
    for (let more = await claim(); more.length > 0; more = await claim()) ids.push(...more.map((j) => j.id));
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
  });

  it("requeues a done job, or creates it", async () => {
    const { id } = await enqueue("q");
    const [job] = await claim();
    await queue.fail(job as ClaimedJob, "boom", null);
    expect(await queue.requeue({ kind: "k", key: "q", payload: { v: 2 } })).toEqual({ id });
    expect(await queue.get("q")).toMatchObject({ status: "queued", attempts: 0, lastError: null });
    const [revived] = await claim();
    expect(revived).toMatchObject({ id, attempts: 1, payload: { v: 2 } });
    await queue.requeue({ kind: "k", key: "new", payload: {} });
    expect(await status("new")).toBe("queued");
  });

  it("reports stats", async () => {
    expect(await queue.stats()).toEqual({ queued: 0, running: 0, dead: 0, oldestQueuedAgeMs: 0 });
    await enqueue("s1", { runAt: new Date(Date.now() - 5_000) });
    await enqueue("s2", { runAt: new Date(Date.now() - 2_000) });
    await enqueue("s3", { runAt: new Date(Date.now() + 3_600_000) });
    const [oldest] = await claim(LONG_LEASE, 1);
    expect(oldest?.key).toBe("s1");
    const stats = await queue.stats();
    expect(stats).toMatchObject({ queued: 2, running: 1, dead: 0 });
    expect(stats.oldestQueuedAgeMs).toBeGreaterThanOrEqual(1_500);
    expect(stats.oldestQueuedAgeMs).toBeLessThan(60_000);
    await queue.fail(oldest as ClaimedJob, "x", null);
    expect(await queue.stats()).toMatchObject({ queued: 2, running: 0, dead: 1 });
  });

  describe("fair claims between groups", () => {
    let fair: PostgresJobQueue;
    let fair2: PostgresJobQueue;
    beforeAll(() => {
      // Two instances on one database: two worker processes as far as the queue can tell.
      fair = new PostgresJobQueue({ db: queueDb, defaultMaxAttempts: 5, perGroupConcurrency: 1 });
      fair2 = new PostgresJobQueue({ db: queueDb, defaultMaxAttempts: 5, perGroupConcurrency: 1 });
    });
    const old = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000);
    const grouped = (key: string, group: string | undefined, runAt: Date) =>
      fair.enqueue({ kind: "k", key, payload: {}, runAt, ...(group ? { group } : {}) });
    const fairClaim = (q: PostgresJobQueue, limit: number, leaseMs = LONG_LEASE) =>
      q.claim({ kinds: ["k"], limit, leaseMs });

    it("serves an owner queued behind another's backlog among the first claims", async () => {
      for (let i = 0; i < 20; i++) await grouped(`a${i}`, "owner-a", old(100 - i));
      await grouped("b0", "owner-b", old(1));
      const first = await fairClaim(fair, 2);
      expect(first.map((j) => j.key).sort()).toEqual(["a0", "b0"]);
      // Both groups are at their cap of one: nothing more until one finishes.
      expect(await fairClaim(fair, 2)).toEqual([]);
      const a0 = first.find((j) => j.key === "a0") as ClaimedJob;
      expect(await fair.complete(a0)).toBe(true);
      expect((await fairClaim(fair, 2)).map((j) => j.key)).toEqual(["a1"]);
    });

    it("holds the per-group cap across two queue instances claiming at once", async () => {
      for (let i = 0; i < 10; i++) {
        await grouped(`a${i}`, "owner-a", old(100 - i));
        await grouped(`b${i}`, "owner-b", old(100 - i));
      }
      const batches = await Promise.all(
        Array.from({ length: 8 }, (_, i) => fairClaim(i % 2 ? fair2 : fair, 2)),
      );
      const keys = batches.flat().map((j) => j.key);
      expect(keys.sort()).toEqual(["a0", "b0"]);
      const stats = await fair.stats();
      expect(stats).toMatchObject({ running: 2, queued: 18 });
    });

    it("leaves ungrouped jobs uncapped and ranks them with the groups' first jobs", async () => {
      await grouped("a0", "owner-a", old(30));
      await grouped("a1", "owner-a", old(29));
      await grouped("u0", undefined, old(20));
      await grouped("u1", undefined, old(10));
      const keys = (await fairClaim(fair2, 10)).map((j) => j.key).sort();
      expect(keys).toEqual(["a0", "u0", "u1"]);
    });

    it("does not count a lapsed lease against its group, and requeue keeps the group", async () => {
      await grouped("a0", "owner-a", old(30));
      await grouped("a1", "owner-a", old(20));
      const [lapsing] = await fairClaim(fair, 1, SHORT_LEASE);
      expect(lapsing?.key).toBe("a0");
      // Once a0's lease lapsed, a0 (the oldest runnable) is handed out again; a1 still waits.
      const again = await waitFor(async () => (await fairClaim(fair2, 2))[0]);
      expect(again).toMatchObject({ key: "a0", attempts: 2 });
      expect(await fair.complete(again as ClaimedJob)).toBe(true);
      await fair.requeue({ kind: "k", key: "a0", payload: {}, runAt: old(40), group: "owner-a" });
      const next = await fairClaim(fair, 2);
      expect(next.map((j) => j.key)).toEqual(["a0"]);
    });
  });

  describe("JobRunner", () => {
    const runners: JobRunner[] = [];
    const runner = (
      handler: JobHandler,
      opts: { concurrency?: number; pollIntervalMs?: number; leaseMs?: number } = {},
    ) => {
      const r = new JobRunner({
        queue,
        handlers: { k: handler },
        concurrency: opts.concurrency ?? 2,
        leaseMs: opts.leaseMs ?? 300,
        pollIntervalMs: opts.pollIntervalMs ?? 50,
        logger: pino({ level: "silent" }),
        backoff: () => 50,
      });
      runners.push(r);
      return r;
    };
    afterEach(async () => {
      await Promise.all(runners.splice(0).map((r) => r.stop(2_000)));
    });

    it("runs handlers with bounded concurrency and extends their leases", async () => {
      let inFlight = 0;
      let maxInFlight = 0;
      const keys = Array.from({ length: 8 }, (_, i) => `b${i}`);
      for (const key of keys) await enqueue(key);
      const lockedUntil = async (key: string) =>
        (
          await queueDb
            .selectFrom("jobs")
            .select("locked_until")
            .where("key", "=", key)
            .executeTakeFirstOrThrow()
        ).locked_until;
      runner(
        async (job) => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          // Held until the runner has moved this job's lease past where the claim put it: the
          // extension is what is under test, not a sleep racing the lease on a loaded machine (a
          // lapse would need the event loop stalled for the whole lease).
          const key = job.key;
          const claimed = new Date(String(await lockedUntil(key))).getTime();
          await waitFor(async () => new Date(String(await lockedUntil(key))).getTime() > claimed, 120_000);
          inFlight--;
        },
        { concurrency: 3, leaseMs: 6_000 },
      ).start();
      await waitFor(async () => (await Promise.all(keys.map(status))).every((s) => s === "done"), 240_000);
      expect(maxInFlight).toBe(3);
      for (const key of keys) expect((await queue.get(key))?.attempts).toBe(1);
    });

    it("retries a failing handler until it succeeds", async () => {
      let calls = 0;
      await enqueue("flaky");
      runner(async () => {
        if (++calls < 3) throw new Error(`fail ${calls}`);
      }).start();
      await waitFor(async () => (await status("flaky")) === "done");
      expect(calls).toBe(3);
      expect(await queue.get("flaky")).toMatchObject({ attempts: 3, lastError: "fail 2" });
    });

    it("dead-letters a PermanentJobError at once", async () => {
      await enqueue("perm");
      runner(async () => {
        throw new PermanentJobError("not an image");
      }).start();
      await waitFor(async () => (await status("perm")) === "dead");
      expect(await queue.get("perm")).toMatchObject({ attempts: 1, lastError: "not an image" });
    });

    it("runs a deferred job again without counting the attempt, however often it is deferred", async () => {
      // One attempt only: an ordinary failure would dead-letter it at once.
      await enqueue("deferred", { maxAttempts: 1 });
      let calls = 0;
      runner(async () => {
        if (++calls <= 4) throw new DeferJobError("the scanner is down", 0);
      }).start();
      await waitFor(async () => (await status("deferred")) === "done");
      expect(calls).toBe(5);
      expect(await queue.get("deferred")).toMatchObject({ attempts: 1 });
    });

    it("defers a job by deferMs, queued with the reason", async () => {
      await enqueue("later", { maxAttempts: 1 });
      const before = Date.now();
      runner(async () => {
        throw new DeferJobError("the hook is down", 60_000);
      }).start();
      await waitFor(async () => (await queue.get("later"))?.lastError === "the hook is down");
      const job = await queue.get("later");
      expect(job).toMatchObject({ status: "queued", attempts: 0 });
      // The database's clock and this one agree to well within the margin.
      expect(job?.runAt.getTime()).toBeGreaterThan(before + 50_000);
    });

    it("wakes up on demand instead of waiting for the poll interval", async () => {
      const r = runner(async () => {}, { pollIntervalMs: 60_000 });
      r.start();
      await delay(50);
      await enqueue("woken");
      r.wake();
      await waitFor(async () => (await status("woken")) === "done", 5_000);
    });

    it("stop() waits for a running job", async () => {
      let finished = false;
      await enqueue("slow");
      const r = runner(async () => {
        await delay(400);
        finished = true;
      });
      r.start();
      await waitFor(() => r.activeCount === 1);
      await r.stop(10_000);
      expect(finished).toBe(true);
      expect(r.activeCount).toBe(0);
      expect(await status("slow")).toBe("done");
    });

    it("stop() aborts a job that outlives the timeout and releases it for another worker at once", async () => {
      let signal: AbortSignal | undefined;
      await enqueue("stuck");
      const r = runner(
        (_job, s) =>
          new Promise((_resolve, reject) => {
            signal = s;
            s.addEventListener("abort", () => reject(s.reason));
          }),
      );
      r.start();
      await waitFor(() => r.activeCount === 1);
      await r.stop(100);
      expect(signal?.aborted).toBe(true);
      expect(await status("stuck")).toBe("queued");
      // Claimable now (the lease is 300 ms; no waiting for it), and the interrupted attempt did not count.
      const [taken] = await claim();
      expect(taken).toMatchObject({ key: "stuck", attempts: 1 });
    });

    it("aborts the handler when its lease is lost", async () => {
      const signals: AbortSignal[] = [];
      await enqueue("lost");
      runner(async (_job, s) => {
        signals.push(s);
        if (signals.length === 1) await new Promise((resolve) => s.addEventListener("abort", resolve));
      }).start();
      await waitFor(() => signals.length === 1);
      // Someone else resets the job: the runner's next extension finds its token gone.
      await queue.requeue({ kind: "k", key: "lost", payload: {} });
      await waitFor(() => signals[0]?.aborted);
      await waitFor(async () => (await status("lost")) === "done");
      expect(signals).toHaveLength(2);
    });
  });
});
