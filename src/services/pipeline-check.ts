import type { Logger } from "pino";
import type { PendingWithoutJobRow } from "../db/maintenance-repository.ts";
import { uploadKey } from "../domain/keys.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { PipelineStats } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";

const LATEST_KEY = "pipeline:pending-with-object";
const HEADS_AT_ONCE = 8;
const SAMPLES = 5;

export interface PipelineCheckReport extends PipelineStats {
  /** Pending images without a job that were looked up in the storage. */
  checked: number;
  /** A few image ids of the flagged ones. */
  samples: string[];
}

/**
 * Storage events are not arriving when an upload's object has been in the storage for a while and
 * its image is still pending with no processing job: the webhook or broker path is broken, and only
 * the reconciler (after the upload URL lapses) would notice. Runs on the scheduler; its result is
 * kept in the KV so every instance's gauges report the same latest check.
 */
export class PipelineCheck {
  constructor(
    private readonly deps: {
      repo: { pendingWithoutJob(before: Date, limit: number): Promise<PendingWithoutJobRow[]> };
      store: ObjectStore;
      kv: KeyValueStore;
      logger: Logger;
      /** An object older than this with its image still pending counts. */
      stallMs: number;
      /** How long a published result stands (a few check intervals): then the gauges read 0. */
      resultTtlMs: number;
      /** Oldest pending images looked up per run. */
      limit?: number;
      now?: () => number;
    },
  ) {}

  async run(opts: { signal?: AbortSignal; publish?: boolean } = {}): Promise<PipelineCheckReport> {
    const { repo, store, stallMs } = this.deps;
    const now = (this.deps.now ?? Date.now)();
    const rows = await repo.pendingWithoutJob(new Date(now - stallMs), this.deps.limit ?? 200);
    const report: PipelineCheckReport = {
      checked: rows.length,
      pendingWithObject: 0,
      oldestAgeSeconds: 0,
      samples: [],
    };
    for (let i = 0; i < rows.length; i += HEADS_AT_ONCE) {
      opts.signal?.throwIfAborted();
      const chunk = rows.slice(i, i + HEADS_AT_ONCE);
      const heads = await Promise.all(chunk.map((row) => store.head(uploadKey(row.id), opts.signal)));
      chunk.forEach((row, j) => {
        const head = heads[j];
        if (!head) return;
        const ageMs = now - head.lastModified.getTime();
        if (ageMs < stallMs) return;
        report.pendingWithObject++;
        report.oldestAgeSeconds = Math.max(report.oldestAgeSeconds, Math.round(ageMs / 1000));
        if (report.samples.length < SAMPLES) report.samples.push(row.id);
      });
    }
    if (opts.publish !== false) {
      const stats: PipelineStats = {
        pendingWithObject: report.pendingWithObject,
        oldestAgeSeconds: report.oldestAgeSeconds,
      };
      await this.deps.kv.set(LATEST_KEY, JSON.stringify(stats), this.deps.resultTtlMs);
    }
    if (report.pendingWithObject > 0) {
      this.deps.logger.warn(
        {
          pendingWithObject: report.pendingWithObject,
          oldestAgeSeconds: report.oldestAgeSeconds,
          samples: report.samples,
        },
        "uploads are in the storage but their images are still pending with no job: are storage events arriving?",
      );
    }
    return report;
  }

  /** The latest published result; null when none stands. */
  async latest(): Promise<PipelineStats | null> {
    const raw = await this.deps.kv.get(LATEST_KEY);
    return raw === null ? null : (JSON.parse(raw) as PipelineStats);
  }
}
