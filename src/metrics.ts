import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { QueueStats } from "./jobs/job-queue.ts";

/** Statuses an image never leaves on its own (deleted is final for delivery even before the purge). */
export type FinalStatus = "ready" | "rejected" | "expired" | "deleted";

/**
 * prom-client's defaults that break the Prometheus naming rules (`promtool check metrics`): gauges
 * ending in _total. Each is the sum of a by-type gauge that stays (`sum(nodejs_active_handles)`).
 */
export const DROPPED_DEFAULT_METRICS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** What the pending-image gauge reads from the database at scrape time. */
export interface PendingStats {
  /** The earliest upload-URL expiry among pending images; null when none is pending. */
  oldestUploadExpiry: Date | null;
}

/** What the buffer gauges read from the KV at scrape time. */
export interface BufferStats {
  entries: number;
  deadLetters: number;
}

/** The latest pipeline check (services/pipeline-check.ts), shared through the KV by every instance. */
export interface PipelineStats {
  pendingWithObject: number;
  oldestAgeSeconds: number;
}

/** One registry per imgup instance (tests build several in one process). */
export function createMetrics(now: () => number = Date.now) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });

  // Queue gauges are read from the database at scrape time; both share one query per scrape
  // (prom-client collects every metric of a scrape in the same tick).
  let readQueueStats: (() => Promise<QueueStats>) | null = null;
  let inFlight: Promise<QueueStats | null> | null = null;
  const queueStats = () => {
    inFlight ??= (readQueueStats ? readQueueStats().catch(() => null) : Promise.resolve(null)).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
  const queueDepth = new Gauge({
    name: "imgup_job_queue_depth",
    help: "Jobs in the queue by state (NaN when the database did not answer)",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const stats = await queueStats();
      for (const state of ["queued", "running", "dead"] as const)
        this.set({ state }, stats?.[state] ?? Number.NaN);
    },
  });
  const queueOldestAge = new Gauge({
    name: "imgup_job_queue_oldest_age_seconds",
    help: "Age of the oldest queued job that is due (0 when none)",
    registers: [registry],
    async collect() {
      const stats = await queueStats();
      this.set(stats ? stats.oldestQueuedAgeMs / 1000 : Number.NaN);
    },
  });

  let readPendingStats: (() => Promise<PendingStats>) | null = null;
  const pendingLapsedAge = new Gauge({
    name: "imgup_images_pending_lapsed_seconds",
    help: "Seconds since the upload URL of the oldest pending image lapsed (0 when none has): past IMGUP_PENDING_GRACE_MS plus a reconcile interval, pending images are stuck",
    registers: [registry],
    async collect() {
      const stats = readPendingStats ? await readPendingStats().catch(() => null) : null;
      const expiry = stats?.oldestUploadExpiry;
      this.set(stats ? (expiry ? Math.max(0, (now() - expiry.getTime()) / 1000) : 0) : Number.NaN);
    },
  });

  let readBufferStats: (() => Promise<BufferStats>) | null = null;
  const bufferGauge = (name: string, help: string, field: keyof BufferStats) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const stats = readBufferStats ? await readBufferStats().catch(() => null) : null;
        this.set(stats ? stats[field] : Number.NaN);
      },
    });
  bufferGauge(
    "imgup_buffer_entries",
    "Intents and storage events buffered in the KV while the database was down, not yet replayed (NaN when the KV did not answer)",
    "entries",
  );
  bufferGauge(
    "imgup_buffer_dead_letters",
    "Buffered entries the database refused, kept in the dead-letter stream for an operator (imgup doctor lists them)",
    "deadLetters",
  );

  let readPipelineStats: (() => Promise<PipelineStats | null>) | null = null;
  const pipelineGauge = (name: string, help: string, field: keyof PipelineStats) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const stats = readPipelineStats ? await readPipelineStats().catch(() => undefined) : null;
        // No check has run yet (or its result lapsed): 0, not an alarm; a failed read: NaN.
        this.set(stats === undefined ? Number.NaN : (stats?.[field] ?? 0));
      },
    });
  pipelineGauge(
    "imgup_images_pending_with_object",
    "Pending images whose upload object has been in the storage longer than IMGUP_EVENT_STALL_MS (storage events are not arriving)",
    "pendingWithObject",
  );
  pipelineGauge(
    "imgup_images_pending_with_object_oldest_seconds",
    "How long the oldest upload object of a still-pending image has been in the storage (0 when none is past IMGUP_EVENT_STALL_MS)",
    "oldestAgeSeconds",
  );

  return {
    registry,
    /** Where the buffer gauges read from; set once the buffer exists. */
    observeBuffer(stats: () => Promise<BufferStats>): void {
      readBufferStats = stats;
    },
    /** Where the pipeline gauges read from (the latest check's result in the KV). */
    observePipeline(stats: () => Promise<PipelineStats | null>): void {
      readPipelineStats = stats;
    },
    /** Where the queue gauges read from; set once the queue exists. */
    observeJobQueue(stats: () => Promise<QueueStats>): void {
      readQueueStats = stats;
    },
    /** Where the pending-image gauge reads from; set once the database is open. */
    observePendingImages(stats: () => Promise<PendingStats>): void {
      readPendingStats = stats;
    },
    pendingLapsedAge,
    queueDepth,
    queueOldestAge,
    httpRequestSeconds: new Histogram({
      name: "imgup_http_request_duration_seconds",
      help: "HTTP requests by method, route pattern and status code",
      labelNames: ["method", "route", "status_code"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    imagesFinalized: counter(
      "imgup_images_finalized_total",
      "Images reaching a final status (reason: reject reason, or what expired or deleted it)",
      ["status", "reason"],
    ),
    processingSeconds: new Histogram({
      name: "imgup_processing_duration_seconds",
      help: "Time a worker spends validating and processing one upload, by outcome",
      labelNames: ["outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    rateLimited: counter("imgup_rate_limit_rejections_total", "Requests refused by a rate limit", ["limit"]),
    rateLimitFailOpen: counter(
      "imgup_rate_limit_fail_open_total",
      "Requests let through because the KV was unreachable",
      ["limit"],
    ),
    idempotencyReplays: counter(
      "imgup_idempotency_replays_total",
      "Responses replayed for a repeated Idempotency-Key",
    ),
    idempotencyConflicts: counter("imgup_idempotency_conflicts_total", "Idempotency-Key refusals", [
      "reason",
    ]),
    idempotencyFailOpen: counter(
      "imgup_idempotency_fail_open_total",
      "Requests run without the KV lock because the KV was unreachable",
    ),
    dedupHits: counter("imgup_dedup_hits_total", "Intents answered with an existing image of the same hash"),
    intentsCreated: counter("imgup_intents_created_total", "Upload intents created", ["method"]),
    intentsBuffered: counter(
      "imgup_intents_buffered_total",
      "Intents written to the KV buffer while the DB was down",
    ),
    intentsReplayed: counter("imgup_intents_replayed_total", "Buffered intents written to the database"),
    eventsBuffered: counter(
      "imgup_storage_events_buffered_total",
      "Object-created events written to the KV buffer because the job could not be enqueued",
    ),
    eventsReplayed: counter(
      "imgup_storage_events_replayed_total",
      "Buffered object-created events whose processing job was enqueued",
    ),
    bufferDeadLetters: counter(
      "imgup_buffer_dead_letters_total",
      "Buffered entries moved to the dead-letter stream (reason: corrupt, unknown_format, conflict, refused)",
      ["kind", "reason"],
    ),
    variantRequests: counter("imgup_variant_requests_total", "Variant requests by storage hit or miss", [
      "result",
    ]),
    transforms: counter("imgup_transforms_total", "Variants generated", ["format"]),
    transformClaims: counter(
      "imgup_transform_claims_total",
      "Cluster-wide single-flight of variant transforms, per caller that reached it (outcome: taken, took_over, waited, failed, timed_out, uncoordinated)",
      ["outcome"],
    ),
    transformSeconds: new Histogram({
      name: "imgup_transform_duration_seconds",
      help: "Time to generate one variant",
      labelNames: ["format"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    transformQueueLength: new Gauge({
      name: "imgup_transform_queue_length",
      help: "Transforms waiting for a slot",
      registers: [registry],
    }),
    dbBreakerState: new Gauge({
      name: "imgup_db_breaker_state",
      help: "Database circuit breaker: 0 closed, 1 half-open, 2 open",
      registers: [registry],
    }),
    moderation: counter(
      "imgup_moderation_total",
      "Moderation hook calls by outcome (decision: allow, reject, hold, unavailable, fail_open) and decisions on held images (approved, rejected_later)",
      ["decision"],
    ),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
