import { timingSafeEqual } from "node:crypto";
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId } from "../domain/keys.ts";
import { parseWebhookSecret, signatureOf } from "../domain/webhook-signature.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectHead, ObjectStore } from "../storage/object-store.ts";
import { MAX_REASON_LENGTH, verifyReviewUrl } from "./moderation.ts";
import { deleteImageObjects } from "./moderation-gate.ts";

/** A callback's webhook-timestamp may be this far from now (Standard Webhooks' usual tolerance). */
const CALLBACK_TOLERANCE_S = 300;

export interface ModerationDecisionsOptions {
  /** IMGUP_VALIDATION_SECRET; undefined: no hook, so no callback and no review URL verifies. */
  secret: string | undefined;
  now?: () => number;
}

/** Headers of a signed callback (Standard Webhooks). */
export interface CallbackHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

/**
 * Decisions on held images, from an admin (approve/reject) or from the hook's later callback, and
 * the hook's read of an original under review. held -> ready or held -> rejected (moderation, with
 * every object deleted) are conditional transitions, so a repeated decision is answered with the
 * image as it is; a decision on an image that is not held (nor already so decided) is a conflict.
 */
export class ModerationDecisions {
  private readonly now: () => number;

  constructor(
    private readonly images: Pick<ImagesRepository, "transition" | "findById">,
    private readonly store: Pick<ObjectStore, "deletePrefix" | "getStream">,
    private readonly opts: ModerationDecisionsOptions,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, "moderation" | "imagesFinalized"> | null = null,
  ) {
    this.now = opts.now ?? Date.now;
  }

  async approve(id: string): Promise<ImageRecord> {
    const moved = isImageId(id)
      ? await this.images.transition(id, ["held"], "ready", { readyAt: new Date(this.now()) })
      : null;
    if (moved) {
      this.metrics?.moderation.inc({ decision: "approved" });
      this.metrics?.imagesFinalized.inc({ status: "ready", reason: "" });
      this.log.info({ imageId: id }, "held image approved");
      return moved;
    }
    return this.alreadyDecided(id, "ready");
  }

  async reject(id: string, reason: string | undefined): Promise<ImageRecord> {
    const detail = reason?.trim() ? reason.trim().slice(0, MAX_REASON_LENGTH) : "rejected by moderation";
    const moved = isImageId(id)
      ? await this.images.transition(id, ["held"], "rejected", {
          rejectReason: "moderation",
          rejectDetail: detail,
        })
      : null;
    if (moved) {
      await deleteImageObjects(this.store, id, this.log);
      this.metrics?.moderation.inc({ decision: "rejected_later" });
      this.metrics?.imagesFinalized.inc({ status: "rejected", reason: "moderation" });
      this.log.info({ imageId: id, reason: "moderation" }, "held image rejected");
      return moved;
    }
    return this.alreadyDecided(id, "rejected");
  }

  /**
   * Throws unless the Standard Webhooks headers sign `rawBody` with the validation secret within
   * the timestamp tolerance. 401 without saying which part failed.
   */
  verifyCallback(headers: CallbackHeaders, rawBody: string): void {
    const key = this.opts.secret ? parseWebhookSecret(this.opts.secret) : null;
    const { id, timestamp, signature } = headers;
    const refuse = () => ERRORS.unauthenticated("the callback is not signed with the validation secret");
    if (!key || !id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) throw refuse();
    const ts = Number(timestamp);
    if (Math.abs(Math.floor(this.now() / 1000) - ts) > CALLBACK_TOLERANCE_S) throw refuse();
    const expected = Buffer.from(signatureOf(key, id, ts, rawBody));
    const match = signature.split(" ").some((given) => {
      const b = Buffer.from(given);
      return b.length === expected.length && timingSafeEqual(b, expected);
    });
    if (!match) throw refuse();
  }

  /**
   * The original of an image under review (processing or held), for the hook holding a valid
   * review URL. Anything else, a bad or expired signature included, is 404.
   */
  async openForReview(
    id: string,
    query: { exp?: string; sig?: string },
  ): Promise<{ head: ObjectHead; body: Readable }> {
    const secret = this.opts.secret;
    if (!secret || !isImageId(id) || !verifyReviewUrl(secret, id, query, this.now()))
      throw ERRORS.imageNotFound();
    const image = await this.images.findById(id);
    if (image?.status !== "processing" && image?.status !== "held") throw ERRORS.imageNotFound();
    const obj = await this.store.getStream(image.objectKey);
    if (!obj) throw ERRORS.imageNotFound();
    return obj;
  }

  /** A "hold" callback changes nothing: the image as it is. */
  async current(id: string): Promise<ImageRecord> {
    const image = isImageId(id) ? await this.images.findById(id) : null;
    if (!image || image.status === "deleted") throw ERRORS.imageNotFound(`no image ${id}`);
    return image;
  }

  /** The answer to a decision that moved nothing: the same decision again, or a conflict. */
  private async alreadyDecided(id: string, outcome: "ready" | "rejected"): Promise<ImageRecord> {
    const image = isImageId(id) ? await this.images.findById(id) : null;
    if (!image || image.status === "deleted") throw ERRORS.imageNotFound(`no image ${id}`);
    const same = image.status === outcome && (outcome === "ready" || image.rejectReason === "moderation");
    if (same) return image;
    throw ERRORS.conflict(`image ${id} is ${image.status}, not held for moderation`);
  }
}
