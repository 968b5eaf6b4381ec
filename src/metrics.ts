import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** One registry per imgup instance (tests build several in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    registry,
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
    variantRequests: counter("imgup_variant_requests_total", "Variant requests by storage hit or miss", [
      "result",
    ]),
    transforms: counter("imgup_transforms_total", "Variants generated", ["format"]),
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
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
