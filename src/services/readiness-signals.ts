import type { Logger } from "pino";
import type { KeyValueStore } from "../kv/kv.ts";
import type { CheckOutcome, ReadinessCheck } from "./readiness.ts";

/**
 * Signals one instance leaves for the others, in the shared KV: a process's memory cannot tell the
 * API whether a worker elsewhere is alive. Values are epoch milliseconds of the writer's clock, so
 * instances need clocks in step (NTP) to well under the thresholds, which are tens of seconds.
 */
const WORKER_HEARTBEAT = "health:worker-heartbeat";
const LAST_STORAGE_EVENT = "health:storage-event";
/** The first upload issued since the last storage event; each event clears it. */
const UPLOADS_WAITING_SINCE = "health:uploads-waiting-since";
/** Kept long past any threshold, so "no heartbeat for N s" stays exact over a weekend without workers. */
const SIGNAL_TTL_MS = 7 * 24 * 3600_000;
/**
 * At most one "upload issued" write per process in this long: the intents hot path must not pay a
 * KV round trip per URL. The mark is at most this late, far below the thresholds.
 */
export const UPLOAD_MARK_INTERVAL_MS = 1000;

const seconds = (ms: number) => Math.max(0, Math.round(ms / 1000));

export class HealthSignals {
  /** When this process last wrote the "upload issued" mark. */
  private markedAt = Number.NEGATIVE_INFINITY;
  /** The first upload issued since then that no write recorded yet, and the write that will. */
  private unmarked: { since: number; timer: NodeJS.Timeout } | null = null;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A worker's run loop last ticked at `at`. */
  async workerAlive(at: number): Promise<void> {
    await this.kv.set(WORKER_HEARTBEAT, String(at), SIGNAL_TTL_MS);
  }

  /**
   * An upload's storage event arrived (webhook, SQS or the embedded storage). Not awaited by the
   * caller: a KV hiccup must neither fail nor slow the event's processing.
   */
  storageEventSeen(): void {
    // Uploads issued before this event are forgotten, as the event's delete forgets them.
    if (this.unmarked) clearTimeout(this.unmarked.timer);
    this.unmarked = null;
    const at = String(this.now());
    void Promise.all([
      this.kv.set(LAST_STORAGE_EVENT, at, SIGNAL_TTL_MS),
      this.kv.delete(UPLOADS_WAITING_SINCE),
    ]).catch((err: Error) => this.log.debug({ err: err.message }, "recording a storage event failed"));
  }

  /**
   * An upload URL was handed out: its storage event is now expected. Not awaited, as above. One
   * write per UPLOAD_MARK_INTERVAL_MS: the first call writes at once; later calls inside the
   * interval leave one write at its end, with the time of the first of them, so the last upload
   * before events stop is still recorded. (An event seen by another process inside that second
   * can precede the write; the next event clears what it wrote.)
   */
  uploadIssued(): void {
    const now = this.now();
    const wait = this.markedAt + UPLOAD_MARK_INTERVAL_MS - now;
    if (wait <= 0) {
      this.markWaiting(now);
      return;
    }
    if (this.unmarked) return;
    const timer = setTimeout(() => {
      const since = this.unmarked?.since;
      this.unmarked = null;
      if (since !== undefined) this.markWaiting(since);
    }, wait);
    timer.unref();
    this.unmarked = { since: now, timer };
  }

  private markWaiting(since: number): void {
    this.markedAt = this.now();
    void this.kv
      .setIfAbsent(UPLOADS_WAITING_SINCE, String(since), SIGNAL_TTL_MS)
      .catch((err: Error) => this.log.debug({ err: err.message }, "recording an issued upload failed"));
  }

  /** "ok", or "degraded: no worker heartbeat for N s" once the newest heartbeat is older than maxAgeMs. */
  async workerHeartbeat(maxAgeMs: number): Promise<CheckOutcome> {
    const raw = await this.read(WORKER_HEARTBEAT);
    if (raw === undefined) return "degraded: worker heartbeat unknown (the KV did not answer)";
    if (raw === null) return "degraded: no worker heartbeat seen";
    const age = this.now() - Number(raw);
    return age > maxAgeMs ? `degraded: no worker heartbeat for ${seconds(age)} s` : "ok";
  }

  /** "ok", or degraded once an upload was issued more than maxAgeMs ago and no storage event came since. */
  async storageEvents(maxAgeMs: number): Promise<CheckOutcome> {
    const [waiting, last] = await Promise.all([
      this.read(UPLOADS_WAITING_SINCE),
      this.read(LAST_STORAGE_EVENT),
    ]);
    if (waiting === undefined || last === undefined)
      return "degraded: storage events unknown (the KV did not answer)";
    if (waiting === null) return "ok";
    const waited = this.now() - Number(waiting);
    if (waited <= maxAgeMs) return "ok";
    const quiet =
      last === null
        ? "no storage event seen"
        : `no storage event for ${seconds(this.now() - Number(last))} s`;
    return `degraded: ${quiet} while uploads were issued (the first ${seconds(waited)} s ago)`;
  }

  /** The value, null when absent, undefined when the KV failed (its own check reports that). */
  private read(key: string): Promise<string | null | undefined> {
    return this.kv.get(key).catch(() => undefined);
  }
}

/** What the heartbeat reads of a JobRunner. */
export interface RunLoop {
  /** Epoch ms of the run loop's last tick (it ticks every poll interval, busy or idle). */
  readonly lastTickAt: number;
}

/**
 * Publishes the run loop's last tick every intervalMs. A stalled loop stops publishing, so with
 * several workers the heartbeat is the freshest healthy one's, never a stalled one's overwriting it.
 */
export function publishHeartbeat(
  loop: RunLoop,
  signals: HealthSignals,
  opts: { intervalMs: number; stallMs: number; log: Logger; now?: () => number },
): { stop(): void } {
  const now = opts.now ?? Date.now;
  const beat = () => {
    const at = loop.lastTickAt;
    if (now() - at > opts.stallMs) return;
    signals
      .workerAlive(at)
      .catch((err: Error) => opts.log.debug({ err: err.message }, "publishing the worker heartbeat failed"));
  };
  beat();
  const timer = setInterval(beat, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** A worker's own readiness: its run loop ticked within stallMs (a hung claim or handler loop fails it). */
export function runLoopCheck(loop: RunLoop, stallMs: number, now: () => number = Date.now): ReadinessCheck {
  return async () => {
    const age = now() - loop.lastTickAt;
    if (age > stallMs) throw new Error(`run loop has not ticked for ${seconds(age)} s`);
  };
}
