import type { Logger } from "pino";
import type { ImagePatch, ImagesRepository } from "../db/images-repository.ts";
import type { ImageRecord } from "../domain/image.ts";
import { imagePrefix } from "../domain/keys.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type ModerationHook, ModerationUnavailableError } from "./moderation.ts";
import { RetryLaterError } from "./processing.ts";

/** What processing found out about a valid image: the facts of its final transition. */
export type ValidatedFacts = Required<
  Pick<
    ImagePatch,
    "placeholder" | "contentType" | "size" | "width" | "height" | "format" | "sha256" | "publicBytes"
  >
> & { contentType: string; size: number; width: number; height: number; sha256: string };

/** allow: processing goes on to ready; otherwise what the gate did with the image. */
export type GateOutcome = "allow" | "held" | "rejected" | "skipped";

export interface ModerationGateOptions {
  /** A hook without a decision lets the image through instead of retrying it later. */
  failOpen: boolean;
  /** Without a decision the job is deferred this long (not an attempt: an outage of any length waits). */
  retryMs: number;
  /** The signed URL to the original that the hook may fetch (moderation.ts reviewUrl). */
  reviewUrl: (imageId: string) => string;
}

/**
 * The worker's side of moderation: asks the hook about a valid image right before it would turn
 * ready and carries out the answer. hold: processing -> held with every fact of a ready image
 * (delivery shows it to its owner only). reject: processing -> rejected (moderation) and every
 * object of the image deleted (original, public copy, eager variants). No answer: RetryLaterError
 * with deferMs, so the image stays processing and its job runs again after retryMs without spending
 * an attempt, however long the hook is down; never silently allowed unless the operator chose fail-open.
 */
export class ModerationGate {
  constructor(
    private readonly hook: ModerationHook,
    private readonly images: Pick<ImagesRepository, "transition">,
    private readonly store: Pick<ObjectStore, "deletePrefix">,
    private readonly opts: ModerationGateOptions,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, "moderation" | "imagesFinalized"> | null = null,
  ) {}

  async decide(image: ImageRecord, facts: ValidatedFacts, signal?: AbortSignal): Promise<GateOutcome> {
    let answer: Awaited<ReturnType<ModerationHook["review"]>>;
    try {
      answer = await this.hook.review(
        {
          imageId: image.id,
          ownerId: image.ownerId,
          contentType: facts.contentType,
          size: facts.size,
          width: facts.width,
          height: facts.height,
          sha256: facts.sha256,
          url: this.opts.reviewUrl(image.id),
        },
        signal,
      );
    } catch (err) {
      if (!(err instanceof ModerationUnavailableError)) throw err;
      if (this.opts.failOpen) {
        this.metrics?.moderation.inc({ decision: "fail_open" });
        this.log.warn(
          { imageId: image.id, err: err.message },
          "moderation hook unavailable: allowed (fail-open)",
        );
        return "allow";
      }
      this.metrics?.moderation.inc({ decision: "unavailable" });
      this.log.warn({ imageId: image.id, err: err.message }, "moderation hook unavailable: retried later");
      throw new RetryLaterError(err.message, this.opts.retryMs);
    }
    this.metrics?.moderation.inc({ decision: answer.decision });
    if (answer.decision === "allow") return "allow";
    if (answer.decision === "hold") {
      const held = await this.images.transition(image.id, ["processing"], "held", facts);
      if (!held) return "skipped";
      this.log.info({ imageId: image.id }, "image held for moderation");
      return "held";
    }
    const rejected = await this.images.transition(image.id, ["processing"], "rejected", {
      ...facts,
      rejectReason: "moderation",
      rejectDetail: answer.reason,
    });
    await deleteImageObjects(this.store, image.id, this.log);
    if (!rejected) return "skipped";
    this.metrics?.imagesFinalized.inc({ status: "rejected", reason: "moderation" });
    this.log.info({ imageId: image.id, reason: "moderation" }, "image rejected");
    return "rejected";
  }
}

/**
 * Every object of a rejected image, variants included. Best effort: a failure is logged and the
 * orphan sweep deletes what is left (a rejected row's objects are orphans to it).
 */
export async function deleteImageObjects(
  store: Pick<ObjectStore, "deletePrefix">,
  imageId: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<void> {
  await store.deletePrefix(imagePrefix(imageId), signal).catch((err: unknown) => {
    log.warn({ err, imageId }, "could not delete a rejected image's objects (the sweep will)");
  });
}
