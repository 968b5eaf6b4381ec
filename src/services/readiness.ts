import { classifyBackendError } from "../backend-errors.ts";
import type { Config } from "../config.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type HealthSignals, type RunLoop, runLoopCheck } from "./readiness-signals.ts";

/**
 * One readiness check: resolves when the dependency answers (whatever with), or with a "degraded: …"
 * note when it does not but the process still serves (the database breaker is open and intents are
 * buffered); throws when the dependency is down.
 */
export type ReadinessCheck = (signal: AbortSignal) => Promise<unknown>;

/** "ok", "degraded: …", or why the dependency is not ready. */
export type CheckOutcome = string;

export function isDegraded(outcome: CheckOutcome): boolean {
  return outcome.startsWith("degraded");
}

/**
 * Runs every check at once, each bounded by timeoutMs: a dependency that hangs reads as "timed out"
 * instead of hanging the probe (a probe that times out says nothing about which one failed).
 */
export async function checkReadiness(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<Record<string, CheckOutcome>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await bounded(check, timeoutMs)] as const),
  );
  return Object.fromEntries(entries);
}

async function bounded(check: ReadinessCheck, timeoutMs: number): Promise<CheckOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error("readiness check timed out"));
      resolve(`timed out after ${timeoutMs} ms`);
    }, timeoutMs);
  });
  const run = check(controller.signal).then(
    (note) => (typeof note === "string" && isDegraded(note) ? note : "ok"),
    (err: unknown) => (err instanceof Error && err.message ? err.message : String(err) || "failed"),
  );
  try {
    return await Promise.race([run, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RoleReadinessDeps {
  config: Config;
  /** The database check (the breaker's "degraded" included). */
  database: ReadinessCheck;
  kv: KeyValueStore;
  store: ObjectStore;
  signals: HealthSignals;
  /** The worker's run loop, in the roles that run one. */
  runLoop: RunLoop | null;
  /** The worker's storage event consumer (AMQP), where one runs. */
  eventQueue?: ReadinessCheck | null;
}

/**
 * What /readyz checks in this role. Every role: the database (the worker's queue), the KV and the
 * storage. The worker: its run loop too (stalled: 503, so the orchestrator restarts it). The API:
 * whether any worker is alive and storage events arrive, read from the KV, as "degraded" only:
 * taking every API instance out of the load balancer because workers are gone would turn a
 * processing backlog into an outage of uploads and delivery too. Those two are left out where the
 * KV is this process's own and the worker another process's (nothing shared to read).
 */
export function roleReadiness(deps: RoleReadinessDeps): () => Promise<Record<string, CheckOutcome>> {
  const { config, kv, store, signals } = deps;
  const checks: Record<string, ReadinessCheck> = {
    database: deps.database,
    kv: () => kv.ping(),
    storage: (signal) => store.ping(signal),
  };
  // Name the setting and the cause (as at start), not the SDK's "UnknownError" of a bodiless 403.
  if (store.kind === "s3") {
    const { bucket, endpoint } = config.storage.s3;
    checks.storage = (signal) =>
      store.ping(signal).catch((err: unknown) => {
        throw new Error(classifyBackendError("s3", err, { bucket, url: endpoint }).message);
      });
  }
  const servesApi = config.role === "all" || config.role === "api";
  const seesWorkers = kv.kind === "redis" || config.role === "all";
  const { workerHeartbeatMaxAgeMs, storageEventMaxAgeMs, workerStallMs } = config.health;
  if (servesApi && seesWorkers && workerHeartbeatMaxAgeMs > 0) {
    checks.workers = () => signals.workerHeartbeat(workerHeartbeatMaxAgeMs);
  }
  // Without an event source (S3 with neither webhook nor SQS) no event is ever expected.
  const eventsExpected =
    config.storage.driver === "local" ||
    config.events.webhookToken !== undefined ||
    config.events.sqsQueueUrl !== undefined ||
    config.events.amqpUrl !== undefined;
  if (servesApi && seesWorkers && eventsExpected && storageEventMaxAgeMs > 0) {
    checks.storageEvents = () => signals.storageEvents(storageEventMaxAgeMs);
  }
  if (config.role === "worker" && deps.runLoop) checks.runLoop = runLoopCheck(deps.runLoop, workerStallMs);
  // A broker outage stops events, not uploads or delivery: only a worker-only process goes unready.
  const eventQueue = deps.eventQueue;
  if (eventQueue) {
    checks.eventQueue = servesApi
      ? (signal) => eventQueue(signal).catch((err: unknown) => `degraded: ${(err as Error).message}`)
      : eventQueue;
  }
  return () => checkReadiness(checks, config.http.readyCheckTimeoutMs);
}
