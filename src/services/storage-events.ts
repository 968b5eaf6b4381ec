import type { Logger } from "pino";
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
  ) {}

  async objectCreated(event: ObjectCreatedEvent): Promise<"enqueued" | "duplicate" | "ignored"> {
    const key = this.keyOf(event.key);
    const parsed = key === null ? null : parseKey(key);
    if (parsed?.kind !== "upload") {
      this.log.debug({ key: event.key, source: event.source }, "storage event ignored: not an upload");
      return "ignored";
    }
    this.onUploadEvent();
    // No row: an object nobody asked for; the job finds nothing to do, uncapped is harmless.
    const owner = await this.ownerOf(parsed.imageId);
    const { created } = await this.jobs.enqueue({
      kind: PROCESS_IMAGE,
      key: processJobKey(parsed.imageId),
      payload: { imageId: parsed.imageId },
      ...(owner ? { group: owner } : {}),
    });
    this.log.info({ imageId: parsed.imageId, source: event.source, created }, "object created");
    return created ? "enqueued" : "duplicate";
  }
}
