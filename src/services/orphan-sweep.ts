import type { Logger } from "pino";
import type { MaintenanceRepository } from "../db/maintenance-repository.ts";
import type { ImageStatus } from "../domain/image.ts";
import { hashPrefix, isImageId, UPLOAD_KEY_SUFFIX } from "../domain/keys.ts";
import { forEachLimit, type TaskRunOptions } from "../jobs/scheduler.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { ListedObject, ObjectStore } from "../storage/object-store.ts";

export interface SweepSettings {
  /** Objects younger than this are never touched, whatever the database says. */
  graceMs: number;
  /** Objects listed per run; a run that stops there continues from the same key next time. */
  maxObjectsPerRun?: number;
  concurrency?: number;
}

export interface SweepReport {
  dryRun: boolean;
  listed: number;
  /** Objects of pending, processing or ready images. */
  live: number;
  /** Keys outside imgup's layout: reported, never deleted (the bucket may be shared). */
  foreign: number;
  /** Orphans still inside the grace period. */
  young: number;
  /** Orphans past the grace period whose image id has no row. */
  withoutRow: number;
  /** Orphans past the grace period whose image is expired, rejected or deleted. */
  ofDeadImage: number;
  /** Upload objects of ready images, past the grace period: a failed delete after promotion, or bytes sent again. */
  leftoverUploads: number;
  /** Orphans actually deleted (0 in a dry run). */
  deleted: number;
  errors: number;
  /** The whole storage was listed in this run. */
  complete: boolean;
  details: string[];
}

/** Counts so far, reported while a run goes (the CLI draws them on a terminal). */
export interface SweepProgress {
  listed: number;
  /** Orphans past the grace period: deleted, or to be deleted, in this run. */
  orphans: number;
  deleted: number;
  errors: number;
}

export interface SweepRunOptions extends TaskRunOptions {
  /** Called after each listed page and each delete, with counts that only grow. */
  onProgress?: (progress: SweepProgress) => void;
}

export type ObjectVerdict =
  | { kind: "foreign" }
  | { kind: "live"; imageId: string }
  | { kind: "orphan"; imageId: string; row: ImageStatus | null; young: boolean };

const DEAD_STATUSES: readonly ImageStatus[] = ["expired", "rejected", "deleted"];
const CURSOR_KEY = "sweep:cursor";
const CURSOR_TTL_MS = 7 * 24 * 3600_000;
const PAGE_SIZE = 1000;
const MAX_DETAILS = 200;

/**
 * The image an object belongs to by imgup's layout (`{p}/{id}/…`, p the id's hash prefix),
 * whatever follows; null for anything else. Looser than parseKey on purpose: a stray
 * `{p}/{id}/tmp` is still ours to clean up, while a key merely shaped like ours is not.
 */
export function imageIdOfKey(key: string): string | null {
  const parts = key.split("/");
  const [p, id] = parts;
  if (parts.length < 3 || !p || !id || !isImageId(id) || hashPrefix(id) !== p) return null;
  return parts.slice(2).join("/") === "" ? null : id;
}

/** What the sweep (and the doctor) make of one listed object. */
export function classifyObject(
  obj: ListedObject,
  statuses: ReadonlyMap<string, ImageStatus>,
  now: number,
  graceMs: number,
): ObjectVerdict {
  const imageId = imageIdOfKey(obj.key);
  if (!imageId) return { kind: "foreign" };
  const row = statuses.get(imageId) ?? null;
  // Once an image is ready nothing reads its upload key again: what is there is left over.
  const leftover = (row === "ready" || row === "held") && obj.key.endsWith(UPLOAD_KEY_SUFFIX);
  if (row !== null && !DEAD_STATUSES.includes(row) && !leftover) return { kind: "live", imageId };
  return { kind: "orphan", imageId, row, young: now - obj.lastModified.getTime() < graceMs };
}

/**
 * Deletes objects that belong to no live image: no row, or an expired/rejected/deleted one,
 * and older than the grace period (an upload can land before its row commits while the
 * database breaker buffers intents). Object ages come from the storage's clock; the grace
 * period must dwarf any skew between it and ours.
 */
export class OrphanSweep {
  constructor(
    private readonly deps: {
      repo: Pick<MaintenanceRepository, "statuses">;
      store: ObjectStore;
      kv: KeyValueStore;
      logger: Logger;
      settings: SweepSettings;
      now?: () => number;
    },
  ) {}

  async run({ dryRun, signal, onProgress }: SweepRunOptions): Promise<SweepReport> {
    const { repo, store, kv, settings } = this.deps;
    const maxObjects = settings.maxObjectsPerRun ?? 200_000;
    const report: SweepReport = {
      dryRun,
      listed: 0,
      live: 0,
      foreign: 0,
      young: 0,
      withoutRow: 0,
      ofDeadImage: 0,
      leftoverUploads: 0,
      deleted: 0,
      errors: 0,
      complete: false,
      details: [],
    };
    let cursor = dryRun ? undefined : ((await kv.get(CURSOR_KEY)) ?? undefined);
    const foreignSample: string[] = [];
    const progress = () =>
      onProgress?.({
        listed: report.listed,
        orphans: report.withoutRow + report.ofDeadImage + report.leftoverUploads,
        deleted: report.deleted,
        errors: report.errors,
      });
    for (;;) {
      signal.throwIfAborted();
      const limit = Math.min(PAGE_SIZE, maxObjects - report.listed);
      const page = await store.list("", { cursor, limit, signal });
      report.listed += page.objects.length;
      const ids = page.objects.map((o) => imageIdOfKey(o.key)).filter((id): id is string => id !== null);
      const statuses = await repo.statuses(ids);
      // "now" after the status query: an object is only judged against rows read before it.
      const now = (this.deps.now ?? Date.now)();
      const doomed: { key: string; why: string }[] = [];
      for (const obj of page.objects) {
        const v = classifyObject(obj, statuses, now, settings.graceMs);
        if (v.kind === "live") report.live++;
        else if (v.kind === "foreign") {
          report.foreign++;
          if (foreignSample.length < 5) foreignSample.push(obj.key);
        } else if (v.young) report.young++;
        else {
          if (v.row === null) report.withoutRow++;
          else if (v.row === "ready" || v.row === "held") report.leftoverUploads++;
          else report.ofDeadImage++;
          doomed.push({ key: obj.key, why: v.row === null ? "no row" : `image ${v.row}` });
        }
      }
      for (const d of doomed)
        this.detail(report, `${dryRun ? "would delete" : "delete"} ${d.key} (${d.why})`);
      progress();
      if (!dryRun) await this.remove(doomed, report, signal, progress);
      cursor = page.nextCursor;
      if (!cursor) {
        report.complete = true;
        break;
      }
      if (report.listed >= maxObjects) break;
    }
    if (!dryRun) {
      if (report.complete || !cursor) await kv.delete(CURSOR_KEY);
      else await kv.set(CURSOR_KEY, cursor, CURSOR_TTL_MS);
    }
    if (foreignSample.length > 0) {
      this.deps.logger.info(
        { count: report.foreign, sample: foreignSample },
        "storage holds objects imgup does not own",
      );
    }
    return report;
  }

  private async remove(
    doomed: { key: string }[],
    report: SweepReport,
    signal: AbortSignal,
    progress: () => void,
  ): Promise<void> {
    const before = report.deleted;
    await forEachLimit(
      doomed,
      this.deps.settings.concurrency ?? 8,
      async ({ key }) => {
        try {
          await this.deps.store.delete(key, signal);
          report.deleted++;
        } catch (err) {
          if (signal.aborted) throw err;
          report.errors++;
          this.deps.logger.warn({ key, err }, "deleting an orphan object failed; the next sweep retries");
        }
        progress();
      },
      signal,
    );
    const deleted = report.deleted - before;
    if (deleted > 0) this.deps.logger.info({ deleted }, "orphan objects deleted");
  }

  private detail(report: SweepReport, line: string): void {
    if (report.details.length < MAX_DETAILS) report.details.push(line);
  }
}
