import type { Logger } from "pino";
import type { Cursor, MaintenanceRepository, ProcessJobState } from "../db/maintenance-repository.ts";
import { uploadKey } from "../domain/keys.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import { forEachLimit, type TaskRunOptions } from "../jobs/scheduler.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { PROCESS_IMAGE, processJobKey } from "./storage-events.ts";
import { locateUpload } from "./upload-source.ts";

export interface ReconcileSettings {
  /** How long after its upload URL lapsed a pending image is left alone (uploads in flight). */
  pendingGraceMs: number;
  /** Margin past the job lease before a processing image counts as stuck. */
  processingGraceMs: number;
  leaseMs: number;
  batchSize?: number;
  maxPerRun?: number;
  concurrency?: number;
}

export interface ReconcileReport {
  dryRun: boolean;
  pendingChecked: number;
  /** Pending images whose object exists (the storage event was lost): processing queued. */
  processingQueued: number;
  expired: number;
  multipartAborted: number;
  /** Processing images nobody works on: their job put back. */
  stuckRequeued: number;
  /** Processing images whose job lease lapsed long ago: no worker is taking jobs. */
  unclaimed: number;
  /** Images whose job was already put back MAX_REPAIRS times; left for an operator (imgup doctor). */
  gaveUp: number;
  errors: number;
  /** maxPerRun was reached; the next run continues. */
  truncated: boolean;
  /** What was (or, in a dry run, would be) done; at most MAX_DETAILS lines. */
  details: string[];
}

/** Counts so far, reported while a run goes (the CLI draws them on a terminal). */
export interface ReconcileProgress {
  /** Lapsed pending and stuck processing images looked at. */
  checked: number;
  /** Processing jobs queued or put back. */
  queued: number;
  expired: number;
  errors: number;
}

export interface ReconcileRunOptions extends TaskRunOptions {
  /** Called after each image, with counts that only grow. */
  onProgress?: (progress: ReconcileProgress) => void;
}

/** A job that kills its worker every time would otherwise be re-queued forever. */
export const MAX_REPAIRS = 3;
const MAX_DETAILS = 200;

/**
 * Repairs what lost events and dead processes leave behind: pending images past their upload
 * window (HEAD: object there -> processing, absent -> expired and its multipart upload aborted),
 * and processing images nobody is working on. Every change is conditional or de-duplicated, so
 * two overlapping runs do no harm (the scheduler's lock makes them rare anyway).
 */
export class Reconciler {
  private readonly batchSize: number;
  private readonly maxPerRun: number;
  private readonly concurrency: number;

  constructor(
    private readonly deps: {
      repo: Pick<MaintenanceRepository, "lapsedPending" | "stuckProcessing" | "expire">;
      store: ObjectStore;
      jobs: Pick<JobQueue, "enqueue" | "requeue">;
      logger: Logger;
      metrics?: Pick<Metrics, "imagesFinalized">;
      settings: ReconcileSettings;
      now?: () => number;
    },
  ) {
    this.batchSize = deps.settings.batchSize ?? 100;
    this.maxPerRun = deps.settings.maxPerRun ?? 1000;
    this.concurrency = deps.settings.concurrency ?? 8;
  }

  async run({ dryRun, signal, onProgress }: ReconcileRunOptions): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      dryRun,
      pendingChecked: 0,
      processingQueued: 0,
      expired: 0,
      multipartAborted: 0,
      stuckRequeued: 0,
      unclaimed: 0,
      gaveUp: 0,
      errors: 0,
      truncated: false,
      details: [],
    };
    let checked = 0;
    const done = () => {
      checked++;
      onProgress?.({
        checked,
        queued: report.processingQueued + report.stuckRequeued,
        expired: report.expired,
        errors: report.errors,
      });
    };
    const now = (this.deps.now ?? Date.now)();
    await this.pending(new Date(now - this.deps.settings.pendingGraceMs), report, dryRun, signal, done);
    const { leaseMs, processingGraceMs } = this.deps.settings;
    await this.processing(new Date(now - leaseMs - processingGraceMs), report, dryRun, signal, done);
    return report;
  }

  private async pending(
    before: Date,
    report: ReconcileReport,
    dryRun: boolean,
    signal: AbortSignal,
    done: () => void,
  ) {
    let cursor: Cursor | undefined;
    while (report.pendingChecked < this.maxPerRun) {
      signal.throwIfAborted();
      const limit = Math.min(this.batchSize, this.maxPerRun - report.pendingChecked);
      const rows = await this.deps.repo.lapsedPending(before, limit, cursor);
      if (rows.length === 0) return;
      report.pendingChecked += rows.length;
      await forEachLimit(
        rows,
        this.concurrency,
        (row) =>
          this.guard(report, row.id, signal, () => this.pendingOne(row, report, dryRun, signal)).then(done),
        signal,
      );
      const last = rows.at(-1);
      if (!last || rows.length < limit) return;
      cursor = { expiresAt: last.uploadExpiresAt, id: last.id };
    }
    report.truncated = true;
  }

  private async pendingOne(
    row: {
      id: string;
      ownerId: string;
      objectKey: string;
      multipartUploadId: string | null;
      job: ProcessJobState | null;
    },
    report: ReconcileReport,
    dryRun: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const { store } = this.deps;
    if (await locateUpload(store, row, signal)) {
      const why = "object present, storage event lost";
      if (await this.ensureProcessing(row, row.job, report, dryRun, why)) report.processingQueued++;
      return;
    }
    if (row.multipartUploadId) {
      if (!dryRun) {
        const aborted = await store
          .abortMultipartUpload(uploadKey(row.id), row.multipartUploadId, signal)
          .then(
            () => true,
            (err) => {
              if ((err as { code?: string }).code !== "no_such_upload") throw err;
              return false;
            },
          );
        // Gone already: aborted earlier, or completed since the HEAD.
        if (!aborted && (await locateUpload(store, row, signal))) {
          const why = "multipart completed just now";
          if (await this.ensureProcessing(row, row.job, report, dryRun, why)) report.processingQueued++;
          return;
        }
      }
      report.multipartAborted++;
      this.detail(report, dryRun, `abort multipart upload of ${row.id}`);
    }
    if (dryRun || (await this.deps.repo.expire(row.id))) {
      if (!dryRun) this.deps.metrics?.imagesFinalized.inc({ status: "expired", reason: "upload_lapsed" });
      report.expired++;
      this.detail(report, dryRun, `expire ${row.id} (no object after the upload window)`);
    }
  }

  private async processing(
    before: Date,
    report: ReconcileReport,
    dryRun: boolean,
    signal: AbortSignal,
    done: () => void,
  ) {
    const rows = await this.deps.repo.stuckProcessing(before, this.maxPerRun);
    if (rows.length === this.maxPerRun) report.truncated = true;
    await forEachLimit(
      rows,
      this.concurrency,
      (row) =>
        this.guard(report, row.id, signal, async () => {
          if (row.job?.status === "running") {
            // Any live worker would have reclaimed it; re-queueing would only reset its attempts.
            report.unclaimed++;
            this.deps.logger.warn(
              { imageId: row.id },
              "processing job lease lapsed and no worker took it over",
            );
            return;
          }
          if (await this.ensureProcessing(row, row.job, report, dryRun, "stuck in processing")) {
            report.stuckRequeued++;
          }
        }).then(done),
      signal,
    );
  }

  /**
   * Queues the image's processing job: new, or put back when it ended without finishing the image.
   * false when it gave up on the image.
   */
  private async ensureProcessing(
    image: { id: string; ownerId: string },
    job: ProcessJobState | null,
    report: ReconcileReport,
    dryRun: boolean,
    why: string,
  ): Promise<boolean> {
    const imageId = image.id;
    if (job && job.repairs >= MAX_REPAIRS) {
      report.gaveUp++;
      this.deps.logger.warn(
        { imageId, job },
        `reconciler gave up on ${imageId}: its job was repaired too often`,
      );
      return false;
    }
    if (!dryRun) {
      const key = processJobKey(imageId);
      // Grouped by owner, so one owner's repairs queue behind other owners' work like uploads do.
      const group = image.ownerId;
      if (job)
        await this.deps.jobs.requeue({
          kind: PROCESS_IMAGE,
          key,
          payload: { imageId, repairs: job.repairs + 1 },
          group,
        });
      else await this.deps.jobs.enqueue({ kind: PROCESS_IMAGE, key, payload: { imageId }, group });
      this.deps.logger.info({ imageId, previousJob: job?.status ?? null }, `processing re-queued: ${why}`);
    }
    this.detail(report, dryRun, `queue processing of ${imageId} (${why})`);
    return true;
  }

  private async guard(
    report: ReconcileReport,
    imageId: string,
    signal: AbortSignal,
    fn: () => Promise<void>,
  ): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (signal.aborted) throw err;
      report.errors++;
      this.deps.logger.warn({ imageId, err }, "reconciling an image failed; the next run retries");
    }
  }

  private detail(report: ReconcileReport, dryRun: boolean, line: string): void {
    if (report.details.length < MAX_DETAILS) report.details.push(dryRun ? `would ${line}` : line);
  }
}
