import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord, ImageStatus, Visibility } from "../domain/image.ts";
import { imagePrefix, isImageId } from "../domain/keys.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { Metrics } from "../metrics.ts";
import type { Principal } from "./auth.ts";
import type { CdnPurgeQueue } from "./cdn-purge.ts";
import { DELETE_IMAGE_OBJECTS } from "./storage-events.ts";

/** States whose visibility the owner may still change. */
const CHANGEABLE: readonly ImageStatus[] = ["pending", "processing", "ready", "held"];

export interface ImagePage {
  items: ImageRecord[];
  nextCursor: string | null;
}

/** The owner's view of their images. Another owner's image is "not found", never "forbidden". */
export class ImagesService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly jobs: JobQueue,
    private readonly metrics: Pick<Metrics, "imagesFinalized"> | null = null,
    private readonly cdn: CdnPurgeQueue | null = null,
  ) {}

  async get(principal: Principal, id: string): Promise<ImageRecord> {
    const image = isImageId(id) ? await this.images.findForOwner(principal.ownerId, id) : null;
    if (!image || image.status === "deleted") throw ERRORS.imageNotFound(`no image ${id}`);
    return image;
  }

  /** `statuses`: only images in one of these states (none: every image that is not deleted). */
  async list(
    principal: Principal,
    opts: {
      limit: number;
      cursor?: string;
      statuses?: readonly ImageStatus[];
      ref?: string;
      refPrefix?: string;
    },
  ): Promise<ImagePage> {
    const before = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
    const rows = await this.images.listForOwner(principal.ownerId, {
      limit: opts.limit + 1,
      before,
      statuses: opts.statuses,
      ref: opts.ref,
      refPrefix: opts.refPrefix,
    });
    const items = rows.slice(0, opts.limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > opts.limit && last ? encodeCursor(last.id) : null };
  }

  async setVisibility(principal: Principal, id: string, visibility: Visibility): Promise<ImageRecord> {
    const before = await this.get(principal, id);
    // Only public answers are in shared caches. Queued before the update, so no crash can leave a
    // private image in the CDN: a purge that runs before the update commits is repeated later
    // (cdn-purge.ts), and one for an update that then fails evicts a cache entry, nothing more.
    if (before.visibility === "public" && visibility === "private") await this.cdn?.enqueue([id], "private");
    const updated = await this.images.update(id, principal.ownerId, CHANGEABLE, {
      visibility,
    });
    if (!updated) throw ERRORS.conflict(`image ${id} can no longer be changed`);
    return updated;
  }

  /** Marks the row deleted at once (delivery 404s immediately); a job removes the objects. */
  async delete(principal: Principal, id: string): Promise<void> {
    const image = await this.get(principal, id);
    // Before the update, as in setVisibility: no crash between the two can leave it in the CDN.
    if (image.visibility === "public") await this.cdn?.enqueue([image.id], "deleted");
    const deleted = await this.images.transition(
      image.id,
      ["pending", "processing", "ready", "rejected", "expired", "held"],
      "deleted",
      { deletedAt: new Date() },
    );
    if (!deleted) throw ERRORS.imageNotFound(`no image ${id}`);
    this.metrics?.imagesFinalized.inc({ status: "deleted", reason: "owner_request" });
    await this.jobs.requeue({
      kind: DELETE_IMAGE_OBJECTS,
      key: `delete:${image.id}`,
      payload: { imageId: image.id, prefix: imagePrefix(image.id) },
    });
  }
}

function encodeCursor(id: string): string {
  return Buffer.from(id).toString("base64url");
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString();
  if (!isImageId(id)) throw ERRORS.invalidCursor("the cursor was not issued by this API");
  return id;
}
