import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type ScheduledTask, Scheduler } from "../../src/jobs/scheduler.ts";
import type { KeyValueStore } from "../../src/kv/kv.ts";
import { eventually } from "../support/harness.ts";
import { kvTargets, type OpenedKv } from "../support/kv-targets.ts";

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Several imgup instances run the scheduler role against one KV; each task must run on one of
 * them at a time, about once per interval in total. Memory: two schedulers on one store (one
 * process); Redis: two separate clients, as two machines would have.
 */
describe.each(kvTargets())("scheduler on $name", ({ open }) => {
  let opened: OpenedKv | undefined;
  const schedulers: Scheduler[] = [];

  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.stop()));
    await opened?.cleanup();
    opened = undefined;
  });

  async function twoInstances(tasks: () => ScheduledTask[]): Promise<[Scheduler, Scheduler, KeyValueStore]> {
    opened = await open();
    const other = opened.connectAgain?.() ?? opened.kv;
    const a = new Scheduler({ kv: opened.kv, logger, tasks: tasks() });
    const b = new Scheduler({ kv: other, logger, tasks: tasks() });
    schedulers.push(a, b);
    return [a, b, opened.kv];
  }

  it("runs a task on one instance at a time, about once per interval in total", async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const task = (): ScheduledTask => ({
      name: "t",
      intervalMs: 400,
      run: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        runs++;
        await sleep(100);
        active--;
        return {};
      },
    });
    const [a, b] = await twoInstances(() => [task()]);
    const started = Date.now();
    a.start();
    b.start();
    // However slowly a loaded machine gets there: wait for the runs, not for a time.
    await eventually(async () => runs >= 3);
    await Promise.all([a.stop(), b.stop()]);
    const elapsed = Date.now() - started;
    expect(maxActive).toBe(1);
    // The 400 ms marker spaces runs at least an interval apart across both instances, so a slow
    // machine only ever makes fewer: never one run per instance per tick.
    expect(runs).toBeLessThanOrEqual(Math.floor(elapsed / 400) + 1);
  });

  it("refuses a second run while one holds the lock; a dry run needs no lock", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const [a, b, kv] = await twoInstances(() => [
      {
        name: "gated",
        intervalMs: 60_000,
        run: async ({ dryRun }) => (dryRun ? { dry: true } : gate.then(() => ({ ok: true }))),
      },
    ]);
    const first = a.runNow("gated", { dryRun: false });
    await eventually(async () => (await kv.get("sched:gated:lock")) !== null);
    expect(await b.runNow("gated", { dryRun: false })).toEqual({ ran: false, reason: "locked" });
    expect(await b.runNow("gated", { dryRun: true })).toEqual({ ran: true, report: { dry: true } });
    release();
    expect(await first).toEqual({ ran: true, report: { ok: true } });
    // The lock is released: a run from the CLI goes through even though the marker is set.
    expect(await b.runNow("gated", { dryRun: false })).toMatchObject({ ran: true });
  });

  it("stop() aborts a run in progress and leaves the task due for another instance", async () => {
    let aborted = false;
    const [a, , kv] = await twoInstances(() => [
      {
        name: "long",
        intervalMs: 2000,
        run: ({ signal }) =>
          new Promise((_, reject) => {
            const abort = () => {
              aborted = true;
              reject(signal.reason);
            };
            // stop() can land between the lock (what the test waits for) and the run's start.
            if (signal.aborted) abort();
            else signal.addEventListener("abort", abort);
          }),
      },
    ]);
    a.start();
    // The first look comes within a quarter interval of start.
    await eventually(async () => (await kv.get("sched:long:lock")) !== null);
    await a.stop();
    expect(aborted).toBe(true);
    expect(await kv.get("sched:long:lock")).toBeNull();
    expect(await kv.get("sched:long:ran")).toBeNull();
  });

  it("a failing task keeps its pace instead of spinning", async () => {
    let runs = 0;
    const [a] = await twoInstances(() => [
      {
        name: "broken",
        intervalMs: 500,
        run: async () => {
          runs++;
          throw new Error("boom");
        },
      },
    ]);
    const started = Date.now();
    a.start();
    await eventually(async () => runs >= 2);
    await a.stop();
    // A failed run leaves the marker too, so runs stay an interval apart: no spinning.
    expect(runs).toBeLessThanOrEqual(Math.floor((Date.now() - started) / 500) + 1);
  });
});
