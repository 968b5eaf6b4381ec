import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { KeyValueStore } from "../kv/kv.ts";

export interface TaskRunOptions {
  /** Look and report, change nothing. */
  dryRun: boolean;
  /** Aborted at the task's timeout (before its lock lapses) or when the scheduler stops. */
  signal: AbortSignal;
}

export interface ScheduledTask {
  name: string;
  intervalMs: number;
  /** A run is aborted after this; the lock outlives it by LOCK_MARGIN_MS. Default 10 minutes. */
  timeoutMs?: number;
  run(opts: TaskRunOptions): Promise<object>;
}

export type RunOutcome = { ran: true; report: object } | { ran: false; reason: "locked" | "not_due" };

export interface SchedulerOptions {
  kv: KeyValueStore;
  logger: Logger;
  tasks: ScheduledTask[];
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const LOCK_MARGIN_MS = 30_000;

/**
 * Runs periodic tasks, each by one instance at a time across the deployment. Two KV keys per task:
 * a lock (SET NX with a TTL past the run's timeout, released compare-and-delete) and a "ran
 * recently" marker living one interval, so N instances do not run a task N times per interval.
 * Each instance only looks every quarter interval; the marker, not the timer, sets the pace.
 */
export class Scheduler {
  readonly #kv: KeyValueStore;
  readonly #log: Logger;
  readonly #tasks: Map<string, ScheduledTask>;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Set<Promise<unknown>>();
  #stopping = new AbortController();
  #started = false;

  constructor(opts: SchedulerOptions) {
    this.#kv = opts.kv;
    this.#log = opts.logger;
    this.#tasks = new Map(opts.tasks.map((t) => [t.name, t]));
    if (this.#tasks.size !== opts.tasks.length) throw new Error("scheduled task names must be unique");
    for (const t of opts.tasks) {
      if (!(t.intervalMs > 0)) throw new Error(`task ${t.name}: intervalMs must be positive`);
    }
  }

  get taskNames(): string[] {
    return [...this.#tasks.keys()];
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stopping = new AbortController();
    // A random first delay spreads a fleet that starts at once.
    for (const task of this.#tasks.values()) this.#schedule(task, Math.random() * tickOf(task));
  }

  /** Stops the timers, aborts runs in progress and waits for them to settle. */
  async stop(): Promise<void> {
    this.#started = false;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#stopping.abort(new Error("scheduler stopped"));
    await Promise.allSettled([...this.#running]);
  }

  /**
   * Runs a task now (the CLI). A dry run takes no lock and leaves no marker; a real run takes the
   * lock like a scheduled one and counts as this interval's run, but ignores the marker.
   */
  async runNow(name: string, opts: { dryRun: boolean; signal?: AbortSignal }): Promise<RunOutcome> {
    const task = this.#task(name);
    if (opts.dryRun) {
      const signal = withTimeout(opts.signal, task.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      return { ran: true, report: await task.run({ dryRun: true, signal }) };
    }
    return this.#runLocked(task, { checkDue: false, signal: opts.signal });
  }

  #task(name: string): ScheduledTask {
    const task = this.#tasks.get(name);
    if (!task) throw new Error(`no scheduled task ${name} (have: ${this.taskNames.join(", ")})`);
    return task;
  }

  #schedule(task: ScheduledTask, delayMs: number): void {
    if (!this.#started) return;
    const timer = setTimeout(() => {
      const run = this.#runLocked(task, { checkDue: true, signal: this.#stopping.signal })
        .catch((err) => {
          if (this.#stopping.signal.aborted) this.#log.info({ task: task.name }, `${task.name} stopped`);
          else this.#log.warn({ task: task.name, err }, `${task.name} failed`);
        })
        .finally(() => {
          this.#running.delete(run);
          this.#schedule(task, tickOf(task) * (0.9 + Math.random() * 0.2));
        });
      this.#running.add(run);
    }, delayMs);
    timer.unref();
    this.#timers.set(task.name, timer);
  }

  async #runLocked(
    task: ScheduledTask,
    opts: { checkDue: boolean; signal?: AbortSignal },
  ): Promise<RunOutcome> {
    const lockKey = `sched:${task.name}:lock`;
    const dueKey = `sched:${task.name}:ran`;
    if (opts.checkDue && (await this.#kv.get(dueKey)) !== null) return { ran: false, reason: "not_due" };
    const timeoutMs = task.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const token = randomUUID();
    if (!(await this.#kv.setIfAbsent(lockKey, token, timeoutMs + LOCK_MARGIN_MS))) {
      return { ran: false, reason: "locked" };
    }
    let attempted = false;
    try {
      // Another instance may have finished a run between the first look and the lock.
      if (opts.checkDue && (await this.#kv.get(dueKey)) !== null) return { ran: false, reason: "not_due" };
      attempted = true;
      const started = performance.now();
      const report = await task.run({ dryRun: false, signal: withTimeout(opts.signal, timeoutMs) });
      // A pass that found nothing is the common case every interval: info would bury the rest.
      this.#log[didSomething(report) ? "info" : "debug"](
        { task: task.name, ms: Math.round(performance.now() - started), report: summary(report) },
        `${task.name} finished`,
      );
      return { ran: true, report };
    } finally {
      // A run cut short by shutdown leaves no marker, so another instance picks the task up soon;
      // a failed one does, so a broken task does not spin.
      if (attempted && !opts.signal?.aborted) {
        await this.#kv.set(dueKey, String(Date.now()), task.intervalMs).catch(() => undefined);
      }
      await this.#kv.deleteIfEquals(lockKey, token).catch(() => undefined);
    }
  }
}

/** The report without its per-item lines: those are for the CLI, the log has its own per-item lines. */
function summary(report: object): object {
  return Object.fromEntries(Object.entries(report).filter(([k]) => k !== "details"));
}

/** A report lists what it did (or failed at) in `details` and counts `errors`; neither means a no-op. */
function didSomething(report: object): boolean {
  const { details, errors } = report as { details?: unknown; errors?: unknown };
  return (Array.isArray(details) && details.length > 0) || (typeof errors === "number" && errors > 0);
}

function tickOf(task: ScheduledTask): number {
  return Math.min(60_000, Math.max(250, task.intervalMs / 4));
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/** Runs fn over items with at most `limit` in flight; stops starting new ones once signal aborts. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
