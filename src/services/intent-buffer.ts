import type { Logger } from "pino";
import { isDatabaseUnavailable } from "../db/breaker.ts";
import type { ImagesRepository, NewImage } from "../db/images-repository.ts";
import type { KeyValueStore, StreamEntry } from "../kv/kv.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";

/** The stream's name predates events: entries of earlier versions (bare intents) are still read. */
export const BUFFER_STREAM = "buffer:intents";
export const DEAD_LETTER_STREAM = "buffer:dead-letters";
const DRAIN_LOCK = "buffer:intents:drain-lock";
const FORMAT = 2;

type BufferedWrite =
  | { v: typeof FORMAT; kind: "intent"; image: NewImage }
  | { v: typeof FORMAT; kind: "event"; event: ObjectCreatedEvent };

export type DeadLetterReason = "corrupt" | "unknown_format" | "conflict" | "refused";

/** A buffered entry the database would not take; kept for an operator, never retried by itself. */
export interface DeadLetter {
  /** Its id in the dead-letter stream. */
  id: string;
  reason: DeadLetterReason;
  detail: string;
  /** "intent", "event", or "unknown" when it could not be read. */
  kind: string;
  /** The buffered entry as it was written. */
  payload: string;
  deadAt: string;
}

export interface DrainReport {
  replayed: number;
  deadLettered: number;
}

export interface BufferOptions {
  /** Enqueues a buffered object-created event's job (StorageEventsService.replay); throws like it. */
  replayEvent?: (event: ObjectCreatedEvent) => Promise<unknown>;
  /** Entries read (and the drain lock renewed) per round trip. */
  batch?: number;
  lockMs?: number;
}

/** Thrown inside a drain: the entry stays, the drain stops, the next one retries it. */
class RetryLater extends Error {}

/**
 * While the database is unreachable, new intents and object-created events are appended to one KV
 * stream, so the client still gets its upload URL and the storage its 2xx; a drainer replays them,
 * in order, once the database answers again. Replay is idempotent (by image id, by job key), so two
 * drainers or a crash mid-drain never make a second row or job. An entry the database refuses for
 * any reason but an outage moves to a dead-letter stream: one bad entry never blocks the others.
 */
export class IntentBuffer {
  private readonly batch: number;
  private readonly lockMs: number;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly images: ImagesRepository,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: BufferOptions = {},
  ) {
    this.batch = opts.batch ?? 100;
    this.lockMs = opts.lockMs ?? 30_000;
  }

  async add(image: NewImage): Promise<void> {
    await this.append({ v: FORMAT, kind: "intent", image });
    this.metrics.intentsBuffered.inc();
  }

  async addEvent(event: ObjectCreatedEvent): Promise<void> {
    await this.append({ v: FORMAT, kind: "event", event });
    this.metrics.eventsBuffered.inc();
  }

  length(): Promise<number> {
    return this.kv.streamLength(BUFFER_STREAM);
  }

  deadLetterCount(): Promise<number> {
    return this.kv.streamLength(DEAD_LETTER_STREAM);
  }

  /** The oldest dead letters first. */
  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const entries = await this.kv.streamRange(DEAD_LETTER_STREAM, limit);
    return entries.map((e) => {
      try {
        return { ...(JSON.parse(e.payload) as Omit<DeadLetter, "id">), id: e.id };
      } catch {
        return {
          id: e.id,
          reason: "corrupt",
          detail: "unreadable dead letter",
          kind: "unknown",
          payload: e.payload,
          deadAt: "",
        };
      }
    });
  }

  /**
   * Replays buffered entries oldest first until the stream is empty, the database is unreachable
   * (rejects; the entry stays) or another drainer took the lock over.
   */
  async drain(): Promise<DrainReport> {
    const report: DrainReport = { replayed: 0, deadLettered: 0 };
    const token = crypto.randomUUID();
    if (!(await this.kv.setIfAbsent(DRAIN_LOCK, token, this.lockMs))) return report;
    try {
      for (;;) {
        // Renewed per batch so a long drain keeps it; lost (it lapsed, another took it): stop.
        if (!(await this.kv.extendIfEquals(DRAIN_LOCK, token, this.lockMs))) {
          this.log.warn("buffer drain lock lost; another drainer continues");
          break;
        }
        const entries = await this.kv.streamRange(BUFFER_STREAM, this.batch);
        if (entries.length === 0) break;
        for (const entry of entries) {
          if (await this.replay(entry)) report.replayed++;
          else report.deadLettered++;
          await this.kv.streamDelete(BUFFER_STREAM, [entry.id]);
        }
      }
    } finally {
      await this.kv.deleteIfEquals(DRAIN_LOCK, token).catch(() => false);
    }
    if (report.replayed + report.deadLettered > 0) this.log.info(report, "buffered writes replayed");
    return report;
  }

  /** True when replayed (or found done already), false when dead-lettered; throws to stop the drain. */
  private async replay(entry: StreamEntry): Promise<boolean> {
    let write: BufferedWrite | null;
    try {
      write = decode(entry.payload);
    } catch (err) {
      return this.deadLetter(entry, "unknown", "corrupt", message(err));
    }
    if (!write)
      return this.deadLetter(entry, "unknown", "unknown_format", "not an entry this version writes");
    try {
      if (write.kind === "intent") {
        const result = await this.images.insertIfAbsent(write.image);
        if (result.outcome === "conflict") {
          const holder = result.existingId ? `image ${result.existingId}` : "another image";
          return this.deadLetter(entry, "intent", "conflict", `${result.constraint} is held by ${holder}`);
        }
        if (result.outcome === "inserted") this.metrics.intentsReplayed.inc();
        return true;
      }
      if (!this.opts.replayEvent) throw new RetryLater("no event replayer on this instance");
      await this.opts.replayEvent(write.event);
      this.metrics.eventsReplayed.inc();
      return true;
    } catch (err) {
      if (err instanceof RetryLater || isDatabaseUnavailable(err)) throw err;
      return this.deadLetter(entry, write.kind, "refused", message(err));
    }
  }

  private async deadLetter(
    entry: StreamEntry,
    kind: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<false> {
    const letter: Omit<DeadLetter, "id"> = {
      reason,
      detail,
      kind,
      payload: entry.payload,
      deadAt: new Date().toISOString(),
    };
    await this.kv.streamAdd(DEAD_LETTER_STREAM, JSON.stringify(letter));
    this.metrics.bufferDeadLetters.inc({ kind, reason });
    this.log.error(
      { entryId: entry.id, kind, reason, detail },
      "buffered write moved to the dead-letter stream",
    );
    return false;
  }

  private async append(write: BufferedWrite): Promise<void> {
    await this.kv.streamAdd(BUFFER_STREAM, JSON.stringify(write));
  }
}

/** null for a well-formed entry of another format; throws on one that is not JSON. */
function decode(payload: string): BufferedWrite | null {
  const raw = JSON.parse(payload) as Record<string, unknown> | null;
  if (typeof raw !== "object" || raw === null) return null;
  // Versions before events wrote the bare intent.
  if (raw.v === undefined && typeof raw.id === "string") return intentOf(raw);
  if (raw.v !== FORMAT) return null;
  if (raw.kind === "intent" && typeof raw.image === "object" && raw.image !== null)
    return intentOf(raw.image as Record<string, unknown>);
  if (raw.kind === "event" && typeof raw.event === "object" && raw.event !== null) {
    const event = raw.event as ObjectCreatedEvent;
    return typeof event.key === "string" && typeof event.source === "string"
      ? { v: FORMAT, kind: "event", event }
      : null;
  }
  return null;
}

function intentOf(raw: Record<string, unknown>): BufferedWrite | null {
  const expires = new Date(raw.uploadExpiresAt as string);
  if (typeof raw.ownerId !== "string" || typeof raw.objectKey !== "string" || Number.isNaN(expires.getTime()))
    return null;
  const claimBy = typeof raw.claimExpiresAt === "string" ? new Date(raw.claimExpiresAt) : null;
  const image = { ...(raw as unknown as NewImage), uploadExpiresAt: expires, claimExpiresAt: claimBy };
  return { v: FORMAT, kind: "intent", image };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
