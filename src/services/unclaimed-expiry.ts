import type { Logger } from "pino";
import type { ClaimsRepository, ExpiredImage } from "../db/claims-repository.ts";
import { imagePrefix, uploadKey } from "../domain/keys.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import { forEachLimit, type TaskRunOptions } from "../jobs/scheduler.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { CdnPurgeQueue } from "./cdn-purge.ts";
import { DELETE_IMAGE_OBJECTS } from "./storage-events.ts";

export interface UnclaimedExpiryReport {
  dryRun: boolean;
  /** Images deleted (or, dry, that would be) because nobody claimed them in time. */
  expired: number;
  /** Of those, images whose objects could not be deleted now: a delete job was queued. */
  deferred: number;
  errors: number;
  /** maxPerRun was reached; the next run continues. */
  truncated: boolean;
  details: string[];
}

const MAX_DETAILS = 200;

/**
 * Deletes images that required a claim and were not claimed by their deadline, with their objects
 * (original, public copy, variants: one prefix). The rows are marked deleted batch by batch by one
 * conditional update, so a claim committed first keeps its image; the objects go right after. If
 * that fails the delete-image-objects job takes over (and the orphan sweep behind it).
 */
export class UnclaimedExpiry {
  private readonly batchSize: number;
  private readonly maxPerRun: number;
  private readonly concurrency: number;

  constructor(
    private readonly deps: {
      claims: Pick<ClaimsRepository, "expireUnclaimed" | "unclaimedDue">;
      store: ObjectStore;
      jobs: Pick<JobQueue, "requeue">;
      logger: Logger;
      metrics?: Pick<Metrics, "imagesFinalized"> | undefined;
      now?: () => number;
      settings?: { batchSize?: number; maxPerRun?: number; concurrency?: number };
      /** Queues the CDN purge of each expired batch (a ready, unclaimed image may have been served). */
      cdn?: CdnPurgeQueue | undefined;
    },
  ) {
    this.batchSize = deps.settings?.batchSize ?? 100;
    this.maxPerRun = deps.settings?.maxPerRun ?? 5000;
    this.concurrency = deps.settings?.concurrency ?? 8;
  }

  async run({ dryRun, signal }: TaskRunOptions): Promise<UnclaimedExpiryReport> {
    const report: UnclaimedExpiryReport = {
      dryRun,
      expired: 0,
      deferred: 0,
      errors: 0,
      truncated: false,
      details: [],
    };
    const now = new Date((this.deps.now ?? Date.now)());
    if (dryRun) {
      const due = await this.deps.claims.unclaimedDue(now, this.maxPerRun);
      report.expired = due.length;
      report.truncated = due.length === this.maxPerRun;
      for (const image of due) this.detail(report, `would delete unclaimed ${image.id}`);
      return report;
    }
    while (report.expired < this.maxPerRun) {
      signal.throwIfAborted();
      const limit = Math.min(this.batchSize, this.maxPerRun - report.expired);
      // The CDN purge is queued before the rows change, so no crash can leave an expired image in
      // the CDN (an expired row is not found again by the next run); what was not due after all
      // costs an eviction, and what became due in between is queued after.
      const due = this.deps.cdn ? (await this.deps.claims.unclaimedDue(now, limit)).map((i) => i.id) : [];
      if (due.length > 0) await this.deps.cdn?.enqueue(due, "unclaimed");
      const batch = await this.deps.claims.expireUnclaimed(now, limit);
      if (batch.length === 0) return report;
      report.expired += batch.length;
      this.deps.metrics?.imagesFinalized.inc({ status: "deleted", reason: "unclaimed" }, batch.length);
      const queued = new Set(due);
      const late = batch.filter((image) => !queued.has(image.id)).map((image) => image.id);
      if (late.length > 0) await this.deps.cdn?.enqueue(late, "unclaimed");
      await forEachLimit(
        batch,
        this.concurrency,
        (image) => this.deleteObjects(image, report, signal),
        signal,
      );
      if (batch.length < limit) return report;
    }
    report.truncated = true;
    return report;
  }

  private async deleteObjects(image: ExpiredImage, report: UnclaimedExpiryReport, signal: AbortSignal) {
    const { store, logger } = this.deps;
    try {
      if (image.multipartUploadId) {
        await store
          .abortMultipartUpload(uploadKey(image.id), image.multipartUploadId, signal)
          .catch((err) => {
            if ((err as { code?: string }).code !== "no_such_upload") throw err;
          });
      }
      await store.deletePrefix(imagePrefix(image.id), signal);
      this.detail(report, `deleted unclaimed ${image.id}`);
      logger.info({ imageId: image.id, ownerId: image.ownerId }, "unclaimed image deleted");
    } catch (err) {
      if (signal.aborted) throw err;
      // The row is deleted already: the job finishes what this could not.
      report.deferred++;
      logger.warn({ imageId: image.id, err }, "unclaimed image: objects left to the delete job");
      try {
        await this.deps.jobs.requeue({
          kind: DELETE_IMAGE_OBJECTS,
          key: `delete:${image.id}`,
          payload: { imageId: image.id, prefix: imagePrefix(image.id) },
        });
      } catch (queueErr) {
        report.errors++;
        logger.warn(
          { imageId: image.id, err: queueErr },
          "unclaimed image: delete job not queued (the sweep will)",
        );
      }
    }
  }

  private detail(report: UnclaimedExpiryReport, line: string): void {
    if (report.details.length < MAX_DETAILS) report.details.push(line);
  }
}
