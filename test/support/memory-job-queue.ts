import type { ClaimedJob, JobInfo, JobQueue, NewJob, QueueStats } from "../../src/jobs/job-queue.ts";

/**
 * The enqueue side of a JobQueue in memory, for service-level tests of event paths: `failEnqueue` makes
 * enqueue throw what it returns, as a database that went away would. Claiming is not modelled.
 */
export class MemoryJobQueue implements JobQueue {
  readonly jobs = new Map<string, NewJob>();
  failEnqueue: (() => Error | null) | null = null;

  async enqueue(job: NewJob): Promise<{ id: string; created: boolean }> {
    const err = this.failEnqueue?.();
    if (err) throw err;
    const created = !this.jobs.has(job.key);
    if (created) this.jobs.set(job.key, job);
    return { id: job.key, created };
  }
  async requeue(job: NewJob): Promise<{ id: string }> {
    this.jobs.set(job.key, job);
    return { id: job.key };
  }
  async get(key: string): Promise<JobInfo | null> {
    const job = this.jobs.get(key);
    return job
      ? {
          id: key,
          kind: job.kind,
          key,
          status: "queued",
          attempts: 0,
          maxAttempts: 5,
          lastError: null,
          runAt: new Date(),
        }
      : null;
  }
  async stats(): Promise<QueueStats> {
    return { queued: this.jobs.size, running: 0, dead: 0, oldestQueuedAgeMs: 0 };
  }
  claim(): Promise<ClaimedJob[]> {
    throw new Error("MemoryJobQueue does not claim");
  }
  complete(): Promise<boolean> {
    throw new Error("MemoryJobQueue does not claim");
  }
  fail(): Promise<"retrying" | "dead" | "lost"> {
    throw new Error("MemoryJobQueue does not claim");
  }
  extendLease(): Promise<boolean> {
    throw new Error("MemoryJobQueue does not claim");
  }
  release(): Promise<boolean> {
    throw new Error("MemoryJobQueue does not claim");
  }
}
