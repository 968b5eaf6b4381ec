import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { CdnPurgeSettings } from "../config.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import { type JobHandler, PermanentJobError } from "../jobs/job-runner.ts";
import { type PurgeRequest, renderPurgeRequests } from "./cdn-purge-request.ts";

export const CDN_PURGE = "cdn-purge";

/** Why an image left the CDN: a metric label and part of the job key. */
export type PurgeReason = "deleted" | "private" | "owner_purge" | "unclaimed";

/** The enqueue side, for the services that make an image undeliverable. */
export interface CdnPurgeQueue {
  /** Queues a purge of these images (now, and once more after repeatAfterMs). Never calls the CDN itself. */
  enqueue(imageIds: readonly string[], reason: PurgeReason): Promise<void>;
}

export type PurgeFetch = (
  url: string,
  init: RequestInit,
) => Promise<{ status: number; body?: { cancel(): Promise<void> } | null }>;

export function createCdnPurgeMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: "imgup_cdn_purge_requests_total",
      help: "CDN/Varnish purge calls by outcome: ok (2xx), error (other status), unreachable (no answer)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    jobs: new Counter({
      name: "imgup_cdn_purge_jobs_total",
      help: "cdn-purge jobs by outcome: purged, retrying (a call failed; retried with backoff), gave_up (last attempt failed)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    queued: new Counter({
      name: "imgup_cdn_purge_images_queued_total",
      help: "Images queued for a CDN purge, by what made them undeliverable",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
export type CdnPurgeMetrics = ReturnType<typeof createCdnPurgeMetrics>;

/** A purge call answered other than 2xx, or not at all. */
export class PurgeFailedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PurgeFailedError";
  }
}

/**
 * Purges the CDN in front of delivery when an image stops being deliverable. The origin already
 * answers 404 when the job runs (callers enqueue after their update), so a purge can never be
 * undone by a refill; a fill that was in flight at the first purge is caught by the repeat. The
 * calls run in the job queue, retried with backoff, so a CDN outage delays a purge but never
 * fails the delete and never loses the purge.
 */
export class CdnPurgeService implements CdnPurgeQueue {
  constructor(
    private readonly deps: {
      settings: CdnPurgeSettings;
      publicUrl: string;
      jobs: Pick<JobQueue, "requeue">;
      logger: Logger;
      metrics: CdnPurgeMetrics;
      fetch?: PurgeFetch;
      now?: () => number;
    },
  ) {}

  get enabled(): boolean {
    return this.deps.settings.kind !== "off";
  }

  async enqueue(imageIds: readonly string[], reason: PurgeReason): Promise<void> {
    if (!this.enabled || imageIds.length === 0) return;
    const { settings, jobs, metrics } = this.deps;
    // One key per image (or per owner-purge batch): a repeated delete or private flip re-queues it.
    const key = `${CDN_PURGE}:${imageIds.length === 1 ? imageIds[0] : `${reason}:${imageIds[0]}+${imageIds.length}`}`;
    const payload = { imageIds: [...imageIds], reason };
    await jobs.requeue({ kind: CDN_PURGE, key, payload, maxAttempts: settings.maxAttempts });
    if (settings.repeatAfterMs > 0) {
      const runAt = new Date((this.deps.now ?? Date.now)() + settings.repeatAfterMs);
      await jobs.requeue({
        kind: CDN_PURGE,
        key: `${key}:repeat`,
        payload,
        runAt,
        maxAttempts: settings.maxAttempts,
      });
    }
    metrics.queued.inc({ reason }, imageIds.length);
  }

  /** Makes every call; throws when any failed, so the job is retried (all of it: purges are idempotent). */
  async purge(imageIds: readonly string[], reference: string, signal: AbortSignal): Promise<void> {
    const requests = renderPurgeRequests(this.deps.settings, this.deps.publicUrl, { imageIds, reference });
    const failures = (await Promise.all(requests.map((r) => this.call(r, signal)))).filter(
      (f): f is string => f !== null,
    );
    if (failures.length > 0) throw new PurgeFailedError(`CDN purge failed: ${failures.join("; ")}`);
  }

  jobHandlers(): Record<string, JobHandler> {
    return {
      [CDN_PURGE]: async (job, signal) => {
        const ids = Array.isArray(job.payload.imageIds) ? job.payload.imageIds.map(String) : [];
        // Queued by an API configured to purge, run by a worker that is not: completing would
        // drop the purge silently; a dead job shows in imgup_job_queue_depth{state="dead"} and says why.
        if (!this.enabled) throw new PermanentJobError("IMGUP_CDN_PURGE is off on this worker");
        try {
          await this.purge(ids, `${job.id}-${job.attempts}`, signal);
        } catch (err) {
          if (!signal.aborted)
            this.deps.metrics.jobs.inc({ outcome: job.attempts >= job.maxAttempts ? "gave_up" : "retrying" });
          throw err;
        }
        this.deps.metrics.jobs.inc({ outcome: "purged" });
        this.deps.logger.info({ images: ids.length, reason: job.payload.reason }, "CDN purged");
      },
    };
  }

  /** null on success, else a description without headers or body (they may carry a token). */
  private async call(request: PurgeRequest, signal: AbortSignal): Promise<string | null> {
    const fetcher: PurgeFetch = this.deps.fetch ?? fetch;
    const where = `${request.method} ${redactedUrl(request.url)}`;
    try {
      const res = await fetcher(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.deps.settings.timeoutMs)]),
      });
      // The answer's body is never read: free the connection for the next call.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        this.deps.metrics.requests.inc({ outcome: "ok" });
        return null;
      }
      this.deps.metrics.requests.inc({ outcome: "error" });
      return `${where}: HTTP ${res.status}`;
    } catch (err) {
      this.deps.metrics.requests.inc({ outcome: "unreachable" });
      return `${where}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}

/** The URL without query or credentials: a token in either must not reach the job's last_error. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}
