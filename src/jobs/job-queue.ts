/**
 * A durable job queue. Jobs are de-duplicated by key (one `process:{imageId}` job however many
 * events arrive), leased for a time so a crashed worker's job is picked up again, retried with
 * backoff and dead-lettered after maxAttempts.
 */
export interface JobQueue {
  /** Inserts unless a job with this key already exists (in any state). */
  enqueue(job: NewJob): Promise<{ id: string; created: boolean }>;
  /** Puts an existing job (done or dead included) back in the queue, or creates it. Used by repair jobs. */
  requeue(job: NewJob): Promise<{ id: string }>;
  /**
   * Leases up to `limit` due jobs of the given kinds: queued ones whose run_at has come, and running
   * ones whose lease lapsed. Each claim increments attempts and gets a fresh lease token.
   */
  claim(opts: { kinds: string[]; limit: number; leaseMs: number }): Promise<ClaimedJob[]>;
  /** Marks the job done if this lease is still the current one; false when the lease was lost. */
  complete(job: ClaimedJob): Promise<boolean>;
  /** Retries after retryInMs, or dead-letters when attempts are used up or retryInMs is null. */
  fail(job: ClaimedJob, error: string, retryInMs: number | null): Promise<"retrying" | "dead" | "lost">;
  /** Pushes the lease forward for a long job; false when the lease was lost. */
  extendLease(job: ClaimedJob, leaseMs: number): Promise<boolean>;
  /**
   * Hands a running job back (queued, this attempt not counted); false when the lease was lost.
   * At once by default, so another worker takes it now instead of after the lease lapses (shutdown);
   * after `delayMs` for a job deferred by its handler (a dependency with no answer yet).
   */
  release(job: ClaimedJob, opts?: { delayMs?: number; error?: string }): Promise<boolean>;
  get(key: string): Promise<JobInfo | null>;
  stats(): Promise<QueueStats>;
}

export interface NewJob {
  kind: string;
  key: string;
  payload: Record<string, unknown>;
  runAt?: Date;
  maxAttempts?: number;
  /**
   * Fairness group (the image owner for processing jobs): a claim never lets more than the queue's
   * per-group limit of one group run at once, and serves the groups with the fewest running first.
   * Ungrouped jobs are not capped.
   */
  group?: string;
}

export interface ClaimedJob {
  id: string;
  kind: string;
  key: string;
  payload: Record<string, unknown>;
  attempts: number;
  maxAttempts: number;
  leaseToken: string;
}

export interface JobInfo {
  id: string;
  kind: string;
  key: string;
  status: "queued" | "running" | "done" | "dead";
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  runAt: Date;
}

export interface QueueStats {
  queued: number;
  running: number;
  dead: number;
  /** Age of the oldest due queued job, 0 when none. */
  oldestQueuedAgeMs: number;
}
