import type pino from "pino";
import { withLogContext, withoutLogContext } from "../logging.ts";
import type { ClaimedJob, JobQueue } from "./job-queue.ts";

export type JobHandler = (job: ClaimedJob, signal: AbortSignal) => Promise<void>;

/** Thrown by a handler when retrying cannot help (invalid input, missing object…): dead-letters at once. */
export class PermanentJobError extends Error {
  readonly permanent = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentJobError";
  }
}

/**
 * Thrown (or any error with a numeric `deferMs`) when the job cannot be judged yet because
 * something it depends on has no answer (a scanner or a moderation hook that is down): the job runs
 * again after deferMs, and the attempt is not counted, so an outage of any length neither uses up
 * its attempts nor dead-letters it.
 */
export class DeferJobError extends Error {
  constructor(
    message: string,
    readonly deferMs: number,
  ) {
    super(message);
    this.name = "DeferJobError";
  }
}

export interface JobRunnerOptions {
  queue: JobQueue;
  handlers: Record<string, JobHandler>;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  logger: pino.Logger;
  /** Delay before retry number `attempt` (1-based); default exponential from 1 s, capped at 5 min, jittered. */
  backoff?: (attempt: number) => number;
}

interface Running {
  job: ClaimedJob;
  controller: AbortController;
  extendTimer: NodeJS.Timeout | undefined;
  /** The handler returned or threw; late lease-extension results no longer matter. */
  settled: boolean;
  done: Promise<void>;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export function defaultBackoff(attempt: number): number {
  const base = Math.min(1000 * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
  // Half fixed, half random: spreads a burst of failures without ever retrying immediately.
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** Polls a JobQueue and runs handlers with bounded concurrency, keeping their leases alive while they run. */
export class JobRunner {
  readonly #opts: JobRunnerOptions;
  readonly #backoff: (attempt: number) => number;
  readonly #kinds: string[];
  readonly #running = new Set<Running>();
  #state: "idle" | "running" | "stopping" | "stopped" = "idle";
  #pollTimer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #pollAgain = false;
  #stopped: Promise<void> | undefined;
  #lastTickAt = Date.now();

  constructor(opts: JobRunnerOptions) {
    if (opts.concurrency < 1) throw new Error("concurrency must be at least 1");
    this.#opts = opts;
    this.#backoff = opts.backoff ?? defaultBackoff;
    this.#kinds = Object.keys(opts.handlers);
  }

  get activeCount(): number {
    return this.#running.size;
  }

  /**
   * Epoch ms of the poll loop's last tick. It ticks every poll interval, idle or with every slot
   * taken; a claim that hangs stops it (the worker's /readyz and heartbeat read it).
   */
  get lastTickAt(): number {
    return this.#lastTickAt;
  }

  start(): void {
    if (this.#state !== "idle") return;
    this.#state = "running";
    this.#lastTickAt = Date.now();
    this.wake();
  }

  /** Poll now instead of at the next interval, e.g. right after enqueueing in this process. */
  wake(): void {
    if (this.#state !== "running") return;
    if (this.#polling) {
      // A claim is in flight; it may have missed the new job, so look once more when it returns.
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#pollTimer);
    // A wake from a request (or a finishing job) must not lend its log context to the poll loop
    // and every job it starts from then on.
    this.#polling = withoutLogContext(() =>
      this.#poll().finally(() => {
        this.#polling = undefined;
        this.#lastTickAt = Date.now();
        if (this.#state !== "running") return;
        if (this.#pollAgain) {
          this.#pollAgain = false;
          this.wake();
        } else {
          this.#pollTimer = setTimeout(() => this.wake(), this.#opts.pollIntervalMs);
        }
      }),
    );
  }

  /**
   * Stops claiming and waits up to timeoutMs for running handlers. Handlers still running after that
   * are aborted and their jobs released: queued again at once, so another worker takes them now
   * rather than after the lease lapses (the interrupted attempt does not count).
   */
  stop(timeoutMs: number): Promise<void> {
    this.#stopped ??= this.#stop(timeoutMs);
    return this.#stopped;
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#state = "stopping";
    clearTimeout(this.#pollTimer);
    await this.#polling;
    const all = Promise.allSettled([...this.#running].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    // Set before aborting so the abandoned handlers' outcomes are not written over the release.
    this.#state = "stopped";
    if (!timedOut) return;
    const abandoned = [...this.#running];
    for (const r of abandoned) {
      clearTimeout(r.extendTimer);
      r.controller.abort(new Error("job runner stopped"));
    }
    // Released without waiting for the aborted handlers: the process is about to exit, and every
    // step of a job is a conditional update, so a late write of this one cannot undo the next.
    await Promise.all(abandoned.map((r) => this.#release(r.job)));
  }

  async #release(job: ClaimedJob): Promise<void> {
    const ctx = { jobId: job.id, kind: job.kind, key: job.key, attempt: job.attempts };
    try {
      if (await this.#opts.queue.release(job)) this.#opts.logger.warn(ctx, "job released at shutdown");
      else this.#opts.logger.warn(ctx, "job lease already lost at shutdown");
    } catch (err) {
      this.#opts.logger.warn({ ...ctx, err }, "releasing a job at shutdown failed; its lease will lapse");
    }
  }

  async #poll(): Promise<void> {
    const free = this.#opts.concurrency - this.#running.size;
    if (free <= 0 || this.#kinds.length === 0) return;
    let jobs: ClaimedJob[];
    try {
      jobs = await this.#opts.queue.claim({ kinds: this.#kinds, limit: free, leaseMs: this.#opts.leaseMs });
    } catch (err) {
      this.#opts.logger.warn({ err }, "claiming jobs failed");
      return;
    }
    // Jobs claimed while stop() was called still run: stop() awaits this poll, then waits for them.
    for (const job of jobs) this.#run(job);
  }

  #run(job: ClaimedJob): void {
    const { logger, queue, leaseMs } = this.#opts;
    const ctx = { jobId: job.id, kind: job.kind, key: job.key, attempt: job.attempts };
    const entry: Running = {
      job,
      controller: new AbortController(),
      extendTimer: undefined,
      settled: false,
      done: Promise.resolve(),
    };
    this.#running.add(entry);

    // A chained timeout rather than setInterval, so a slow extension never overlaps the next one.
    const scheduleExtend = () => {
      entry.extendTimer = setTimeout(async () => {
        try {
          const held = await queue.extendLease(job, leaseMs);
          if (entry.settled || this.#state === "stopped") return;
          if (held) {
            scheduleExtend();
            return;
          }
          logger.warn(ctx, "job lease lost; aborting handler");
          entry.controller.abort(new Error("job lease lost"));
        } catch (err) {
          // The lease may still be ours; keep trying until it lapses or the handler ends.
          logger.warn({ ...ctx, err }, "extending job lease failed");
          if (!entry.settled && this.#state !== "stopped") scheduleExtend();
        }
      }, leaseMs / 3);
    };

    entry.done = (async () => {
      const handler = this.#opts.handlers[job.kind];
      const started = performance.now();
      logger.debug(ctx, "job started");
      scheduleExtend();
      try {
        if (!handler) throw new PermanentJobError(`no handler for job kind ${job.kind}`);
        // Whatever the handler's services log names the job.
        await withLogContext({ jobId: job.id, jobKind: job.kind }, () =>
          handler(job, entry.controller.signal),
        );
        entry.settled = true;
        clearTimeout(entry.extendTimer);
        if (this.#state === "stopped") return;
        const ms = Math.round(performance.now() - started);
        if (await queue.complete(job)) logger.info({ ...ctx, ms }, "job done");
        else logger.warn({ ...ctx, ms }, "job finished after its lease was lost; outcome discarded");
      } catch (err) {
        entry.settled = true;
        clearTimeout(entry.extendTimer);
        // Aborted handlers (lease lost, shutdown) leave the job to whoever holds or takes the lease.
        if (this.#state === "stopped" || entry.controller.signal.aborted) {
          logger.warn({ ...ctx, err }, "job aborted");
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        const deferMs = deferOf(err);
        if (deferMs !== null) {
          const held = await queue.release(job, { delayMs: deferMs, error: message });
          if (held) logger.info({ ...ctx, deferMs, reason: message }, "job deferred");
          else logger.warn({ ...ctx, reason: message }, "job deferred after its lease was lost");
          return;
        }
        const permanent = isPermanent(err);
        const outcome = await queue.fail(job, message, permanent ? null : this.#backoff(job.attempts));
        logger.warn({ ...ctx, err, outcome, permanent }, `job failed (${outcome})`);
      }
    })()
      .catch((err) => logger.error({ ...ctx, err }, "recording job outcome failed"))
      .finally(() => {
        clearTimeout(entry.extendTimer);
        this.#running.delete(entry);
        // A slot is free: take the next job without waiting for the poll interval.
        this.wake();
      });
  }
}

function isPermanent(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { permanent?: unknown }).permanent === true;
}

function deferOf(err: unknown): number | null {
  const ms = typeof err === "object" && err !== null ? (err as { deferMs?: unknown }).deferMs : undefined;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : null;
}
