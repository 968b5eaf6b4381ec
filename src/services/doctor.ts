import type { MaintenanceRepository } from "../db/maintenance-repository.ts";
import { parseKey } from "../domain/keys.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type BucketCorsCheck, checkBucketCors, printBucketCors } from "./doctor-cors.ts";
import type { DeadLetter } from "./intent-buffer.ts";
import { classifyObject, imageIdOfKey } from "./orphan-sweep.ts";
import type { PipelineCheck, PipelineCheckReport } from "./pipeline-check.ts";
import type { UsageAudit, UsageReport } from "./usage-audit.ts";

/** What the doctor reads of the outage buffer (IntentBuffer). */
export interface BufferStatus {
  length(): Promise<number>;
  deadLetterCount(): Promise<number>;
  deadLetters(limit: number): Promise<DeadLetter[]>;
}

export interface BufferReport {
  /** Entries waiting for the database (replayed by every running instance once it answers). */
  entries: number;
  /** Entries the database refused, kept for an operator. */
  deadLetters: number;
  /** The oldest few dead letters. */
  samples: DeadLetter[];
}

export interface DoctorSettings {
  sweepGraceMs: number;
  pendingGraceMs: number;
  processingGraceMs: number;
  leaseMs: number;
}

/** Each kind is something the database and the storage disagree on, past every grace period. */
export interface Disagreements {
  /** A ready image whose original is not in the storage (nothing repairs this by itself). */
  readyWithoutOriginal: number;
  /** An object whose image id has no row (the sweep deletes it). */
  objectWithoutRow: number;
  /** An object of an expired, rejected or deleted image (the sweep deletes it). */
  objectOfDeadImage: number;
  /** An upload object of a ready image: promoted already, or bytes sent again (the sweep deletes it). */
  leftoverUpload: number;
  /** A pending image past its upload window that nothing is processing (the reconciler decides it). */
  pendingPastExpiry: number;
  /** The same for a multipart upload, which the reconciler also aborts in the storage. */
  expiredMultipart: number;
  /** A processing image past the job lease that no worker is working on. */
  processingPastLease: number;
}

export interface DoctorReport {
  checkedAt: string;
  objectsListed: number;
  readyRowsChecked: number;
  disagreements: Disagreements;
  /** Not disagreements: keys outside imgup's layout, and orphans still inside the grace period. */
  notes: { foreignObjects: number; orphansWithinGrace: number };
  /** A few keys or ids per non-zero kind. */
  samples: Partial<Record<keyof Disagreements | "foreignObjects", string[]>>;
  total: number;
  /** The bucket's CORS rules against the browser origins (S3 only; null on local storage). */
  bucketCors: BucketCorsCheck | null;
  /** Uploads in the storage whose image waits for an event that never came (null when not wired). */
  pipeline: PipelineCheckReport | null;
  /** The outage buffer and its dead letters (null when not wired, or the KV did not answer). */
  buffer: BufferReport | null;
  /** Each owner's usage record against the bytes the storage holds (null when not wired). */
  usage: UsageReport | null;
}

const PAGE_SIZE = 1000;
const SAMPLES = 5;

/**
 * Compares the database with the storage. The listing (bytewise key order) and the ready rows
 * (ordered by object_key collate "C", the same order) are walked side by side page by page, so
 * memory stays at one page whatever the size of the bucket.
 */
export class Doctor {
  constructor(
    private readonly deps: {
      repo: MaintenanceRepository;
      store: ObjectStore;
      settings: DoctorSettings;
      /** Browser origins that upload straight to the bucket: IMGUP_CORS_ORIGINS, and the demo page's. */
      corsOrigins?: { configured: string[]; page?: string | undefined };
      pipelineCheck?: PipelineCheck | undefined;
      buffer?: BufferStatus | undefined;
      /** A fresh usage check per run (see usage-audit.ts). */
      usageAudit?: (() => UsageAudit) | undefined;
      now?: () => number;
    },
  ) {}

  private async bucketCors(signal?: AbortSignal): Promise<BucketCorsCheck | null> {
    const origins = this.deps.corsOrigins ?? { configured: [] };
    try {
      return await checkBucketCors(this.deps.store, origins, signal);
    } catch (err) {
      // Reading it needs s3:GetBucketCORS, which a deployment's key may lack: say so, do not fail.
      const why = err instanceof Error ? err.message : String(err);
      return {
        rules: 0,
        origins: [],
        missing: [],
        notes: [`could not read the bucket's CORS rules: ${why}`],
      };
    }
  }

  /** fixUsage: also repair the usage record from the storage (`imgup doctor --fix-usage`). */
  async run(opts: { signal?: AbortSignal; fixUsage?: boolean } = {}): Promise<DoctorReport> {
    const { repo, store, settings } = this.deps;
    const now = () => (this.deps.now ?? Date.now)();
    const startedAt = now();
    const d: Disagreements = {
      readyWithoutOriginal: 0,
      objectWithoutRow: 0,
      objectOfDeadImage: 0,
      leftoverUpload: 0,
      pendingPastExpiry: 0,
      expiredMultipart: 0,
      processingPastLease: 0,
    };
    const report: DoctorReport = {
      checkedAt: new Date(startedAt).toISOString(),
      objectsListed: 0,
      readyRowsChecked: 0,
      disagreements: d,
      notes: { foreignObjects: 0, orphansWithinGrace: 0 },
      samples: {},
      total: 0,
      bucketCors: await this.bucketCors(opts.signal),
      pipeline: null,
      buffer: await this.bufferReport(),
      usage: null,
    };
    const usage = this.deps.usageAudit?.() ?? null;
    const sample = (kind: keyof DoctorReport["samples"], value: string) => {
      const list = report.samples[kind] ?? [];
      if (list.length < SAMPLES) list.push(value);
      report.samples[kind] = list;
    };

    let cursor: string | undefined;
    let checkedUpTo: string | null = null;
    for (;;) {
      opts.signal?.throwIfAborted();
      const page = await store.list("", { cursor, limit: PAGE_SIZE, signal: opts.signal });
      report.objectsListed += page.objects.length;
      await usage?.page(page.objects);
      const ids = page.objects.map((o) => imageIdOfKey(o.key)).filter((id): id is string => id !== null);
      const statuses = await repo.statuses(ids);
      const pageNow = now();
      const originals = new Set<string>();
      for (const obj of page.objects) {
        if (parseKey(obj.key)?.kind === "original") originals.add(obj.key);
        const v = classifyObject(obj, statuses, pageNow, settings.sweepGraceMs);
        if (v.kind === "foreign") {
          report.notes.foreignObjects++;
          sample("foreignObjects", obj.key);
        } else if (v.kind === "orphan" && v.young) report.notes.orphansWithinGrace++;
        else if (v.kind === "orphan" && v.row === null) {
          d.objectWithoutRow++;
          sample("objectWithoutRow", obj.key);
        } else if (v.kind === "orphan" && (v.row === "ready" || v.row === "held")) {
          d.leftoverUpload++;
          sample("leftoverUpload", obj.key);
        } else if (v.kind === "orphan") {
          d.objectOfDeadImage++;
          sample("objectOfDeadImage", `${obj.key} (${v.row})`);
        }
      }
      // Every ready row whose original would sort into this page must be on it.
      const upTo = page.nextCursor ? (page.objects.at(-1)?.key ?? null) : null;
      let after = checkedUpTo;
      for (;;) {
        const keys = await repo.readyKeysBetween(after, upTo, PAGE_SIZE);
        report.readyRowsChecked += keys.length;
        for (const key of keys) {
          if (originals.has(key)) continue;
          d.readyWithoutOriginal++;
          sample("readyWithoutOriginal", key);
        }
        if (keys.length < PAGE_SIZE) break;
        after = keys.at(-1) ?? null;
      }
      checkedUpTo = upTo;
      cursor = page.nextCursor;
      if (!cursor) break;
    }

    const stuck = await repo.stuckCounts(
      new Date(startedAt - settings.pendingGraceMs),
      new Date(startedAt - settings.leaseMs - settings.processingGraceMs),
    );
    d.pendingPastExpiry = stuck.pending;
    d.expiredMultipart = stuck.multipart;
    d.processingPastLease = stuck.processing;
    report.total = Object.values(d).reduce((a, b) => a + b, 0);
    report.pipeline = (await this.deps.pipelineCheck?.run({ signal: opts.signal, publish: false })) ?? null;
    report.usage = (await usage?.finish({ fix: opts.fixUsage, signal: opts.signal })) ?? null;
    return report;
  }

  private async bufferReport(): Promise<BufferReport | null> {
    const buffer = this.deps.buffer;
    if (!buffer) return null;
    try {
      const [entries, deadLetters, samples] = await Promise.all([
        buffer.length(),
        buffer.deadLetterCount(),
        buffer.deadLetters(SAMPLES),
      ]);
      return { entries, deadLetters, samples };
    } catch {
      return null;
    }
  }
}

export function doctorExitCode(report: DoctorReport): number {
  return report.total > 0 ||
    (report.bucketCors?.missing.length ?? 0) > 0 ||
    (report.pipeline?.pendingWithObject ?? 0) > 0 ||
    (report.buffer?.deadLetters ?? 0) > 0 ||
    (report.usage?.drift ?? 0) > 0
    ? 1
    : 0;
}

const LABELS: Record<keyof Disagreements, [string, string]> = {
  readyWithoutOriginal: ["ready image without its original", "restore the object or delete the image"],
  objectWithoutRow: ["object without a row", "imgup sweep deletes these"],
  objectOfDeadImage: ["object of an expired/rejected/deleted image", "imgup sweep deletes these"],
  leftoverUpload: ["upload object of a ready image", "imgup sweep deletes these"],
  pendingPastExpiry: ["pending past its upload window", "imgup reconcile processes or expires these"],
  expiredMultipart: ["multipart upload past its expiry", "imgup reconcile aborts these"],
  processingPastLease: [
    "processing past the job lease",
    "imgup reconcile re-queues these (is a worker running?)",
  ],
};

/** The human-readable report `imgup doctor` prints. */
export function printDoctorReport(report: DoctorReport, print: (line: string) => void): void {
  print(
    `imgup doctor at ${report.checkedAt}: ${report.objectsListed} objects listed, ` +
      `${report.readyRowsChecked} ready images checked`,
  );
  const width = Math.max(...Object.values(LABELS).map(([l]) => l.length));
  for (const kind of Object.keys(LABELS) as (keyof Disagreements)[]) {
    const [label, hint] = LABELS[kind];
    const n = report.disagreements[kind];
    print(`  ${label.padEnd(width)}  ${String(n).padStart(6)}${n > 0 ? `   (${hint})` : ""}`);
    for (const s of n > 0 ? (report.samples[kind] ?? []) : []) print(`      e.g. ${s}`);
  }
  const { foreignObjects, orphansWithinGrace } = report.notes;
  if (foreignObjects > 0) {
    print(`note: ${foreignObjects} objects outside imgup's key layout, left alone`);
    for (const s of report.samples.foreignObjects ?? []) print(`      e.g. ${s}`);
  }
  if (orphansWithinGrace > 0) {
    print(`note: ${orphansWithinGrace} orphan objects are still inside the sweep's grace period`);
  }
  printPipeline(report, print);
  printUsage(report.usage, print);
  printBucketCors(report.bucketCors, print);
  const corsMissing =
    (report.bucketCors?.missing.length ?? 0) > 0 ? "; the bucket's CORS rules are incomplete" : "";
  print(`${report.total === 0 ? "no disagreements" : `${report.total} disagreements`}${corsMissing}`);
}

function printPipeline(report: DoctorReport, print: (line: string) => void): void {
  const p = report.pipeline;
  if (p && p.pendingWithObject > 0) {
    print(
      `${p.pendingWithObject} uploads in the storage still wait for their event (oldest ${p.oldestAgeSeconds}s): ` +
        "check the storage event path (webhook, broker); imgup reconcile picks them up once their URL lapses",
    );
    for (const id of p.samples) print(`      e.g. image ${id}`);
  }
  const b = report.buffer;
  if (!b) return;
  if (b.entries > 0)
    print(`note: ${b.entries} intents/events buffered while the database was unreachable, not yet replayed`);
  if (b.deadLetters > 0) {
    print(
      `${b.deadLetters} buffered intents/events the database refused are in the dead-letter stream ` +
        '(see docs/operations.md, "Outage buffer and dead letters")',
    );
    for (const l of b.samples) print(`      ${l.deadAt} ${l.kind} ${l.reason}: ${l.detail}`);
  }
}

function printUsage(u: UsageReport | null, print: (line: string) => void): void {
  if (!u) return;
  if (u.fixed !== null && u.fixed > 0)
    print(`usage: repaired the record of ${u.fixed} owners from the storage`);
  if (u.drift === 0) {
    print(`usage: the record of ${u.ownersChecked} owners matches the storage`);
    return;
  }
  const hint = u.fixed === null ? " (imgup doctor --fix-usage rebuilds it from the storage)" : "";
  print(`usage: ${u.drift} of ${u.ownersChecked} owners' usage differs from the storage${hint}`);
  for (const d of u.samples) {
    print(
      `      e.g. ${d.ownerId}: recorded originals ${d.recorded.originals} B, variants ${d.recorded.variants} B; ` +
        `storage ${d.storage.originals} B, ${d.storage.variants} B`,
    );
  }
}
