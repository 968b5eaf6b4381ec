import type { Logger } from "pino";
import type { MaintenanceRepository, OwnerRow } from "../db/maintenance-repository.ts";
import { imagePrefix, uploadKey } from "../domain/keys.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { JobHandler } from "../jobs/job-runner.ts";
import { forEachLimit } from "../jobs/scheduler.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { CdnPurgeQueue } from "./cdn-purge.ts";
import { DELETE_IMAGE_OBJECTS } from "./storage-events.ts";

export const PURGE_OWNER_IMAGES = "purge-owner-images";

export function purgeJobKey(ownerId: string): string {
  return `purge-owner:${ownerId}`;
}

export interface OwnerPurgeResult {
  ownerId: string;
  dryRun: boolean;
  /** The owner's rows, whatever their status: what the purge job will remove. */
  images: number;
  /** Rows this call marked deleted (the rest were already, or the job marks them). */
  markedDeleted: number;
}

/** Counts so far, reported while purgeObjects goes (the CLI draws them on a terminal). */
export interface PurgeProgress {
  /** Images whose objects are gone (their rows go batch by batch). */
  objectsRemoved: number;
  /** Rows removed. */
  removed: number;
  failed: number;
}

/** Some images kept their objects (and rows): the job is retried for them. */
export class OwnerPurgeIncompleteError extends Error {
  constructor(
    readonly ownerId: string,
    readonly removed: number,
    readonly failed: number,
  ) {
    super(`owner purge of ${ownerId}: ${failed} images still have objects`);
    this.name = "OwnerPurgeIncompleteError";
  }
}

export interface OwnerPurgeSettings {
  batchSize?: number;
  /** How long a request spends marking rows before leaving the rest to the job. */
  markBudgetMs?: number;
  concurrency?: number;
}

/**
 * Deleting images: one image (DELETE /v1/images/{id} queues delete-image-objects) or every image
 * of an owner (user withdrawal). Rows are marked deleted first, so delivery answers 404 at once;
 * a job then removes the objects (original, variants, an unfinished multipart upload) and, for a
 * purge, the rows themselves. Everything is idempotent: a retried or re-requested job continues
 * with what is left, and the orphan sweep catches whatever a failure leaves behind.
 */
export class OwnerPurgeService {
  private readonly batchSize: number;
  private readonly markBudgetMs: number;
  private readonly concurrency: number;

  constructor(
    private readonly deps: {
      repo: Pick<
        MaintenanceRepository,
        "countOwner" | "markOwnerDeleted" | "ownerRows" | "markDeleted" | "removeDeleted" | "findForDeletion"
      >;
      store: ObjectStore;
      jobs: Pick<JobQueue, "requeue">;
      logger: Logger;
      metrics?: Pick<Metrics, "imagesFinalized">;
      settings?: OwnerPurgeSettings;
      /** Queues the CDN purge of each batch once its rows are marked deleted. */
      cdn?: CdnPurgeQueue | undefined;
    },
  ) {
    this.batchSize = deps.settings?.batchSize ?? 200;
    this.markBudgetMs = deps.settings?.markBudgetMs ?? 5000;
    this.concurrency = deps.settings?.concurrency ?? 8;
  }

  /** Hides the owner's images now (within a time budget) and queues the purge job. */
  async purge(ownerId: string, opts: { dryRun?: boolean } = {}): Promise<OwnerPurgeResult> {
    const images = await this.deps.repo.countOwner(ownerId);
    const result: OwnerPurgeResult = { ownerId, dryRun: opts.dryRun === true, images, markedDeleted: 0 };
    if (opts.dryRun) return result;
    // The job first: it marks, deletes and purges the CDN itself, so a crash while marking here
    // leaves nothing hidden but still cached or stored. Both mark with conditional updates.
    await this.deps.jobs.requeue({
      kind: PURGE_OWNER_IMAGES,
      key: purgeJobKey(ownerId),
      payload: { ownerId },
    });
    const deadline = performance.now() + this.markBudgetMs;
    while (performance.now() < deadline) {
      const marked = await this.deps.repo.markOwnerDeleted(ownerId, this.batchSize);
      if (marked === 0) break;
      this.deps.metrics?.imagesFinalized.inc({ status: "deleted", reason: "owner_purge" }, marked);
      result.markedDeleted += marked;
      this.deps.logger.info(
        { ownerId, marked: result.markedDeleted, images },
        "owner purge: images marked deleted",
      );
    }
    this.deps.logger.info({ ownerId, images, markedDeleted: result.markedDeleted }, "owner purge queued");
    return result;
  }

  /**
   * The purge job: batch by batch in id order, marks what is not marked yet, deletes each image's
   * objects, then the rows whose objects are gone. Throws at the end if any image failed, so the
   * job is retried for those. onProgress is called after each image, with counts that only grow.
   */
  async purgeObjects(
    ownerId: string,
    signal: AbortSignal,
    onProgress?: (progress: PurgeProgress) => void,
  ): Promise<{ removed: number; failed: number }> {
    const { repo, logger } = this.deps;
    let after: string | null = null;
    let removed = 0;
    let failed = 0;
    let objectsRemoved = 0;
    const progress = () => onProgress?.({ objectsRemoved, removed, failed });
    for (;;) {
      signal.throwIfAborted();
      const rows = await repo.ownerRows(ownerId, after, this.batchSize);
      if (rows.length === 0) break;
      const marked = await repo.markDeleted(rows.filter((r) => r.status !== "deleted").map((r) => r.id));
      if (marked > 0)
        this.deps.metrics?.imagesFinalized.inc({ status: "deleted", reason: "owner_purge" }, marked);
      // Every row of the batch now 404s at the origin (visibility is not read: purging a key no
      // cache holds costs one call per batch).
      await this.deps.cdn?.enqueue(
        rows.map((r) => r.id),
        "owner_purge",
      );
      const done: string[] = [];
      await forEachLimit(
        rows,
        this.concurrency,
        async (row) => {
          try {
            await this.deleteObjects(row, signal);
            done.push(row.id);
            objectsRemoved++;
          } catch (err) {
            if (signal.aborted) throw err;
            failed++;
            logger.warn({ ownerId, imageId: row.id, err }, "owner purge: deleting objects failed");
          }
          progress();
        },
        signal,
      );
      removed += await repo.removeDeleted(done);
      progress();
      logger.info({ ownerId, removed, failed }, "owner purge progress");
      after = rows.at(-1)?.id ?? null;
    }
    if (failed > 0) throw new OwnerPurgeIncompleteError(ownerId, removed, failed);
    logger.info({ ownerId, removed }, "owner purge finished");
    return { removed, failed };
  }

  /** The delete-image-objects job (single image deletes). */
  async deleteImage(imageId: string, signal: AbortSignal): Promise<number> {
    const row = await this.deps.repo.findForDeletion(imageId);
    if (row && row.status !== "deleted") {
      // Deleted and then restored? Never remove objects of a live row.
      this.deps.logger.warn({ imageId, status: row.status }, "delete job skipped: the image is not deleted");
      return 0;
    }
    return this.deleteObjects(row ?? { id: imageId, multipartUploadId: null, objectKey: "" }, signal);
  }

  /** Job handlers for the worker's runner: delete-image-objects and purge-owner-images. */
  jobHandlers(): Record<string, JobHandler> {
    return {
      [DELETE_IMAGE_OBJECTS]: async (job, signal) => {
        const imageId = String(job.payload.imageId);
        const removed = await this.deleteImage(imageId, signal);
        this.deps.logger.info({ imageId, removed }, "image objects deleted");
      },
      [PURGE_OWNER_IMAGES]: async (job, signal) => {
        await this.purgeObjects(String(job.payload.ownerId), signal);
      },
    };
  }

  private async deleteObjects(
    row: Pick<OwnerRow, "id" | "multipartUploadId" | "objectKey">,
    signal: AbortSignal,
  ): Promise<number> {
    const { store } = this.deps;
    if (row.multipartUploadId) {
      // Parts of an unfinished upload are invisible to listings; only an abort frees them.
      await store.abortMultipartUpload(uploadKey(row.id), row.multipartUploadId, signal).catch((err) => {
        if ((err as { code?: string }).code !== "no_such_upload") throw err;
      });
    }
    return store.deletePrefix(imagePrefix(row.id), signal);
  }
}
