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

/** Where an event goes when its job cannot be enqueued (the KV buffer, IntentBuffer.addEvent). */
export type EventBuffer = (event: ObjectCreatedEvent) => Promise<void>;

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
    try {
      return await this.enqueue(imageId, event);
    } catch (err) {
      if (!this.buffer || !isDatabaseUnavailable(err)) throw err;
      await this.buffer(event);
      this.log.warn({ imageId, source: event.source }, "database unreachable: storage event buffered");
      return "buffered";
    }
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
