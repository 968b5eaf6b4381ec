import type { Logger } from "pino";
import { isDatabaseUnavailable } from "../db/breaker.ts";
import { parseKey } from "../domain/keys.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";

export const PROCESS_IMAGE = "process-image";
export const DELETE_IMAGE_OBJECTS = "delete-image-objects";

export function processJobKey(imageId: string): string {
  return `process:${imageId}`;
}

/** The image's owner, or null when there is no such image. */
export type OwnerLookup = (imageId: string) => Promise<string | null>;

/** Where an event goes when its job cannot be enqueued (the outage buffer, IntentBuffer). */
export interface EventBuffer {
  addEvent(event: ObjectCreatedEvent): Promise<void>;
  /** Entries not replayed yet; an event must not overtake them (its intent may be one). */
  length(): Promise<number>;
}

export type ObjectCreatedOutcome = "enqueued" | "duplicate" | "buffered" | "ignored";

/**
 * Turns "an object was created" (from any storage, any delivery path) into one de-duplicated
 * processing job. Only upload keys trigger processing: the worker's own writes (the promoted
 * original, variants) never loop back.
 */
export class StorageEventsService {
  constructor(
    private readonly jobs: JobQueue,
    private readonly log: Logger,
    /**
     * The key carries only the image id; the job's fairness group is its owner. One primary-key
     * read per event here is cheaper than resolving owners inside every claim.
     */
    private readonly ownerOf: OwnerLookup,
    /** The storage's key to ours (an S3 key prefix is stripped); null for another deployment's. */
    private readonly keyOf: (storageKey: string) => string | null = (key) => key,
    /** An upload's event arrived: the API's /readyz tells whether events flow (HealthSignals). */
    private readonly onUploadEvent: () => void = () => {},
    /** Where events go while the database is unreachable; without one, objectCreated rejects. */
    private readonly buffer: EventBuffer | null = null,
  ) {}

  /**
   * Resolves only once the event is durably recorded: its job enqueued or, while the database is
   * unreachable, the event buffered (replayed in order on recovery). Rejects when neither worked,
   * so a sender that retries (a broker's nack, a webhook's 503) does.
   */
  async objectCreated(event: ObjectCreatedEvent): Promise<ObjectCreatedOutcome> {
    const imageId = this.uploadImageId(event);
    if (imageId === null) {
      this.log.debug({ key: event.key, source: event.source }, "storage event ignored: not an upload");
      return "ignored";
    }
    this.onUploadEvent();
    // Right after an outage the image's intent may still wait in the buffer: an event enqueued now
    // would be processed before the row exists and find nothing to do. Behind it, it keeps order.
    if (this.buffer && (await this.buffer.length().catch(() => 0)) > 0) return this.buffered(imageId, event);
    try {
      return await this.enqueue(imageId, event);
    } catch (err) {
      if (!this.buffer || !isDatabaseUnavailable(err)) throw err;
      return this.buffered(imageId, event);
    }
  }

  private async buffered(imageId: string, event: ObjectCreatedEvent): Promise<"buffered"> {
    await (this.buffer as EventBuffer).addEvent(event);
    this.log.warn({ imageId, source: event.source }, "storage event buffered behind the database outage");
    return "buffered";
  }

  /** A buffered event on recovery: enqueues or throws (the buffer keeps or dead-letters it). */
  async replay(event: ObjectCreatedEvent): Promise<ObjectCreatedOutcome> {
    const imageId = this.uploadImageId(event);
    return imageId === null ? "ignored" : this.enqueue(imageId, event);
  }

  private uploadImageId(event: ObjectCreatedEvent): string | null {
    const key = this.keyOf(event.key);
    const parsed = key === null ? null : parseKey(key);
    return parsed?.kind === "upload" ? parsed.imageId : null;
  }

  private async enqueue(imageId: string, event: ObjectCreatedEvent): Promise<"enqueued" | "duplicate"> {
    // No row: an object nobody asked for; the job finds nothing to do, uncapped is harmless.
    const owner = await this.ownerOf(imageId);
    const { created } = await this.jobs.enqueue({
      kind: PROCESS_IMAGE,
      key: processJobKey(imageId),
      payload: { imageId },
      ...(owner ? { group: owner } : {}),
    });
    this.log.info({ imageId, source: event.source, created }, "object created");
    return created ? "enqueued" : "duplicate";
  }
}
