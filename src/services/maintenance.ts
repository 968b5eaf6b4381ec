import type { Logger } from "pino";
import { type ClaimsRepository, KyselyClaimsRepository } from "../db/claims-repository.ts";
import { MaintenanceRepository } from "../db/maintenance-repository.ts";
import type { Db } from "../db/schema.ts";
import { UsageAuditRepository } from "../db/usage-audit-repository.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { JobHandler } from "../jobs/job-runner.ts";
import { Scheduler } from "../jobs/scheduler.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { CdnPurgeQueue } from "./cdn-purge.ts";
import { type BufferStatus, Doctor } from "./doctor.ts";
import { OrphanSweep, type SweepProgress } from "./orphan-sweep.ts";
import { OwnerPurgeService } from "./owner-purge.ts";
import { PipelineCheck } from "./pipeline-check.ts";
import { type ReconcileProgress, Reconciler } from "./reconciler.ts";
import { processJobKey } from "./storage-events.ts";
import { UnclaimedExpiry } from "./unclaimed-expiry.ts";
import { UsageAudit } from "./usage-audit.ts";

/** Config.maintenance: intervals and grace periods of the consistency jobs. */
export interface MaintenanceSettings {
  reconcileIntervalMs: number;
  /** A pending image is left alone this long after its upload URL lapsed. */
  pendingGraceMs: number;
  /** Margin past the job lease before a processing image counts as stuck. */
  processingGraceMs: number;
  sweepIntervalMs: number;
  /** Objects younger than this are never deleted by the sweep. */
  sweepGraceMs: number;
  /** An upload object this old whose image is still pending with no job: events are not arriving. */
  eventStallMs: number;
  pipelineCheckIntervalMs: number;
  /** How often images past their claim deadline are looked for. */
  unclaimedExpiryIntervalMs: number;
}

export const DEFAULT_MAINTENANCE_SETTINGS: MaintenanceSettings = {
  reconcileIntervalMs: 60_000,
  pendingGraceMs: 5 * 60_000,
  processingGraceMs: 60_000,
  sweepIntervalMs: 3600_000,
  sweepGraceMs: 24 * 3600_000,
  eventStallMs: 2 * 60_000,
  pipelineCheckIntervalMs: 60_000,
  unclaimedExpiryIntervalMs: 60_000,
};

/** Where runs through the scheduler report progress; unset (the default) reports none. */
export interface MaintenanceProgress {
  reconcile?: ((progress: ReconcileProgress) => void) | undefined;
  sweep?: ((progress: SweepProgress) => void) | undefined;
}

export interface Maintenance {
  reconciler: Reconciler;
  sweep: OrphanSweep;
  doctor: Doctor;
  pipelineCheck: PipelineCheck;
  ownerPurge: OwnerPurgeService;
  unclaimedExpiry: UnclaimedExpiry;
  /** Runs "reconcile" and "sweep" periodically (roles all and scheduler); runNow for the CLI. */
  scheduler: Scheduler;
  /** delete-image-objects and purge-owner-images, for the worker's JobRunner. */
  jobHandlers: Record<string, JobHandler>;
  /** Set by the CLI before scheduler.runNow, which passes no options of its own through. */
  progress: MaintenanceProgress;
}

/** Wires the consistency jobs from the adapters the composition root already has. */
export function createMaintenance(deps: {
  db: Db;
  store: ObjectStore;
  kv: KeyValueStore;
  jobs: JobQueue;
  logger: Logger;
  /** Config.jobs.leaseMs: how long a crashed worker's job stays leased. */
  leaseMs: number;
  settings: MaintenanceSettings;
  /** Browser origins uploading straight to the bucket, for the doctor's bucket CORS check. */
  corsOrigins?: { configured: string[]; page?: string | undefined };
  /** Counts images expired and purged; optional for tests that wire maintenance by hand. */
  metrics?: Pick<Metrics, "imagesFinalized">;
  /** The database breaker around the repository (app.ts); tests wiring by hand may leave it out. */
  guard?: (repo: MaintenanceRepository) => MaintenanceRepository;
  /** The outage buffer, for the doctor's dead-letter listing. */
  buffer?: BufferStatus;
  /** Claims over the database breaker (app.ts); a plain one on `db` otherwise. */
  claims?: ClaimsRepository;
  /** Tests: the expiry's clock. */
  now?: () => number;
  /** Queues CDN purges for images the owner purge and the unclaimed expiry delete. */
  cdn?: CdnPurgeQueue;
}): Maintenance {
  const { db, store, kv, jobs, leaseMs, settings, metrics } = deps;
  const plainRepo = new MaintenanceRepository(db, processJobKey(""));
  const repo = deps.guard ? deps.guard(plainRepo) : plainRepo;
  const logger = deps.logger.child({ component: "maintenance" });
  const reconciler = new Reconciler({
    repo,
    store,
    jobs,
    logger,
    metrics,
    settings: {
      pendingGraceMs: settings.pendingGraceMs,
      processingGraceMs: settings.processingGraceMs,
      leaseMs,
    },
  });
  const sweep = new OrphanSweep({ repo, store, kv, logger, settings: { graceMs: settings.sweepGraceMs } });
  const pipelineCheck = new PipelineCheck({
    repo,
    store,
    kv,
    logger,
    stallMs: settings.eventStallMs,
    resultTtlMs: 3 * settings.pipelineCheckIntervalMs,
  });
  const doctor = new Doctor({
    repo,
    store,
    pipelineCheck,
    buffer: deps.buffer,
    usageAudit: () => new UsageAudit(new UsageAuditRepository(db), store),
    corsOrigins: deps.corsOrigins,
    settings: {
      sweepGraceMs: settings.sweepGraceMs,
      pendingGraceMs: settings.pendingGraceMs,
      processingGraceMs: settings.processingGraceMs,
      leaseMs,
    },
  });
  const ownerPurge = new OwnerPurgeService({ repo, store, jobs, logger, metrics, cdn: deps.cdn });
  const unclaimedExpiry = new UnclaimedExpiry({
    claims: deps.claims ?? new KyselyClaimsRepository(db),
    store,
    jobs,
    logger,
    metrics,
    now: deps.now,
    cdn: deps.cdn,
  });
  const progress: MaintenanceProgress = {};
  const scheduler = new Scheduler({
    kv,
    logger,
    tasks: [
      {
        name: "reconcile",
        intervalMs: settings.reconcileIntervalMs,
        timeoutMs: 10 * 60_000,
        run: (o) => reconciler.run({ ...o, onProgress: progress.reconcile }),
      },
      {
        name: "sweep",
        intervalMs: settings.sweepIntervalMs,
        timeoutMs: 30 * 60_000,
        run: (o) => sweep.run({ ...o, onProgress: progress.sweep }),
      },
      {
        name: "pipeline-check",
        intervalMs: settings.pipelineCheckIntervalMs,
        timeoutMs: 5 * 60_000,
        // Reports only; nothing to leave out on a dry run but the published result.
        run: (o) => pipelineCheck.run({ signal: o.signal, publish: !o.dryRun }),
      },
      {
        name: "expire-unclaimed",
        intervalMs: settings.unclaimedExpiryIntervalMs,
        timeoutMs: 10 * 60_000,
        run: (o) => unclaimedExpiry.run(o),
      },
    ],
  });
  return {
    reconciler,
    sweep,
    doctor,
    pipelineCheck,
    ownerPurge,
    unclaimedExpiry,
    scheduler,
    jobHandlers: ownerPurge.jobHandlers(),
    progress,
  };
}
