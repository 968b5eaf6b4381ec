import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { ImagesRepository } from "../db/images-repository.ts";
import type { ImageRecord, RejectReason } from "../domain/image.ts";
import { publicOriginalKey } from "../domain/keys.ts";
import { stripMetadata } from "../domain/metadata-strip.ts";
import { dimensionsExceeded } from "../domain/profiles.ts";
import { SNIFF_BYTES, sniff } from "../domain/sniff.ts";
import { type ImageWork, imageVerdict, isResourceVerdict } from "../imaging/image-work.ts";
import type { Metrics } from "../metrics.ts";
import type { MalwareCheck } from "../scanning/malware-check.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { ModerationGate } from "./moderation-gate.ts";
import { type Derivatives, taskOptions, type WorkBudget } from "./processing-derivatives.ts";
import { deleteUploadedBytes, locateUpload, promoteUpload } from "./upload-source.ts";

export interface ProcessingPolicy {
  maxBytes: number;
  maxPixels: number;
  allowedTypes: readonly string[];
  /** Hard deadline of all the image work of one job (decode, eager presets, placeholder). */
  timeoutMs: number;
  maxJpegScans: number;
}

export type ProcessOutcome = "ready" | "rejected" | "skipped" | "held";

/** Thrown when the work should be retried later (the object is not visible yet, the row not committed). */
export class RetryLaterError extends Error {
  override name = "RetryLaterError";

  /**
   * With deferMs the job runs again after that long without spending an attempt (job-runner.ts
   * DeferJobError): for a dependency that is down, which may stay down longer than the job's retries.
   */
  constructor(
    message: string,
    readonly deferMs?: number,
  ) {
    super(message);
  }
}

/**
 * The worker's validation of an uploaded original: size, magic bytes, header (pixel limit before
 * decoding), full decode, SHA-256. The original is never modified. Every status change is a
 * conditional update, so running the same job twice changes nothing.
 */
export class ProcessingService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly policy: ProcessingPolicy,
    private readonly work: ImageWork,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, "imagesFinalized" | "processingSeconds"> | null = null,
    private readonly derivatives: Derivatives | null = null,
    /** The clamd scan (IMGUP_CLAMD_URL); null: off. */
    private readonly malware: Pick<MalwareCheck, "check"> | null = null,
    /** The moderation hook (IMGUP_VALIDATION_URL); null: valid images turn ready at once. */
    private readonly moderation: ModerationGate | null = null,
  ) {}

  async process(imageId: string, signal?: AbortSignal): Promise<ProcessOutcome> {
    const end = this.metrics?.processingSeconds.startTimer();
    let outcome: ProcessOutcome | "retry" | "error" = "error";
    try {
      outcome = await this.validate(imageId, signal);
      return outcome;
    } catch (err) {
      if (err instanceof RetryLaterError) outcome = "retry";
      throw err;
    } finally {
      end?.({ outcome });
    }
  }

  private async validate(imageId: string, signal?: AbortSignal): Promise<ProcessOutcome> {
    const current = await this.images.findById(imageId);
    if (!current) throw new RetryLaterError(`image ${imageId} has no row yet`);
    if (current.status === "rejected" || current.status === "deleted") {
      // A previous run may have died between the status change and the delete.
      await deleteUploadedBytes(this.store, current, signal);
      return "skipped";
    }
    if (current.status === "ready") return "skipped";
    // Awaiting a moderation decision: its upload key is gone, and only the decision moves it on.
    if (current.status === "held") return "skipped";

    // The object first: an event or hint for an upload that has not landed (a forged or early
    // completion, an event racing its own write) must leave the image pending, still abortable.
    const source = await locateUpload(this.store, current, signal);
    if (!source) throw new RetryLaterError(`no upload for image ${imageId} (yet)`);
    const head = source.head;
    const image = await this.images.transition(imageId, ["pending", "processing", "expired"], "processing");
    if (!image) return "skipped";
    // The third check of an upload profile: its limits as they were at the intent (on the row).
    const limits = effectiveLimits(this.policy, image);

    if (head.size > limits.maxBytes) {
      return this.reject(
        image,
        "too_large",
        `${head.size} bytes, limit ${limits.maxBytes}${limits.of}`,
        signal,
      );
    }
    if (head.size === 0) return this.reject(image, "not_an_image", "the object is empty", signal);

    const read = await this.read(source.key, limits.maxBytes, signal);
    if (read === null) throw new RetryLaterError(`object ${source.key} vanished while reading`);
    const { bytes } = read;
    if (bytes.length > limits.maxBytes) {
      return this.reject(image, "too_large", `more than ${limits.maxBytes} bytes${limits.of}`, signal);
    }

    const sniffed = sniff(bytes.subarray(0, SNIFF_BYTES));
    if (sniffed.kind !== "image") {
      const what = sniffed.mime ? `the bytes are ${sniffed.mime}` : "the bytes are not a known image format";
      return this.reject(image, "not_an_image", what, signal);
    }
    if (!limits.allowedTypes.includes(sniffed.mime)) {
      return this.reject(image, "unsupported_format", `${sniffed.mime} is not accepted${limits.of}`, signal);
    }
    if (sniffed.mime !== image.declaredContentType) {
      const detail = `declared ${image.declaredContentType} but the bytes are ${sniffed.mime}`;
      return this.reject(image, "type_mismatch", detail, signal);
    }

    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (image.declaredSha256 && image.declaredSha256 !== sha256) {
      return this.reject(
        image,
        "hash_mismatch",
        `declared ${image.declaredSha256}, computed ${sha256}`,
        signal,
      );
    }

    // The malware scan: on the verified bytes and before anything decodes them or copies them to the
    // original. No verdict never passes (unless fail-open): the job was put back for later.
    if (this.malware) {
      const scan = await this.malware.check(image, bytes, signal);
      if (scan.verdict === "infected") return this.reject(image, "malware", scan.signature, signal);
      if (scan.verdict === "deferred")
        throw new RetryLaterError(`malware scan deferred: ${scan.why}`, scan.retryInMs);
    }

    // The image work runs in killable processes with one deadline for the whole job; an abort (lease
    // lost, shutdown) kills the task and the job is released, not judged. A verdict of the image work
    // (over the deadline or memory bound included) rejects the upload: it is never retried, because
    // the same bytes would cost the same again.
    signal?.throwIfAborted();
    // The copy to the original runs beside the image work, off the critical path; it is pinned to
    // the version read, the original is not served before "ready", and a rejection deletes it.
    const promotion = source.needsPromotion
      ? promoteUpload(this.store, image, { ...read, key: source.key, contentType: sniffed.mime }, signal)
      : null;
    promotion?.catch(() => undefined);
    const rejectAfterPromotion = async (reason: RejectReason, detail: string) => {
      await promotion?.catch(() => undefined);
      return this.reject(image, reason, detail, signal);
    };
    const budget: WorkBudget = { timeoutMs: this.policy.timeoutMs, usedMs: 0, signal };
    let probe: Awaited<ReturnType<ImageWork["probe"]>>;
    let placeholder: string | null = null;
    try {
      const decode = { maxPixels: limits.maxPixels, maxJpegScans: this.policy.maxJpegScans };
      // The placeholder comes from the validating decode where it can (one decode, not two).
      const request = { ...decode, placeholder: this.derivatives !== null };
      probe = await this.work.probe(bytes, request, taskOptions(budget));
      if (!probe.ok) return rejectAfterPromotion(probe.reason, probe.detail);
      const oversize = dimensionsExceeded(limits, probe.width, probe.height);
      if (oversize) return rejectAfterPromotion("dimensions_exceeded", `${oversize}${limits.of}`);
      // Variants come before "ready", so the first page view after it finds the thumbnail made.
      if (this.derivatives) {
        await this.derivatives.eager(image, bytes, budget);
        placeholder = probe.placeholder ?? null;
        if (probe.placeholder === undefined) placeholder = await this.derivatives.placeholder(bytes, budget);
      }
    } catch (err) {
      // A killed task of an aborted job says nothing about the image.
      signal?.throwIfAborted();
      const reason = imageVerdict(err);
      if (!reason) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      if (isResourceVerdict(err)) this.log.warn({ imageId: image.id, reason, detail }, "image work stopped");
      return rejectAfterPromotion(reason, detail);
    }
    signal?.throwIfAborted();
    const publicBytes = await this.storePublicCopy(image, bytes, probe.format, sniffed.mime, signal);
    if (promotion) {
      if (!(await promotion))
        throw new RetryLaterError(`upload ${source.key} changed while it was validated`);
      // Before "ready", so the job ends with it; nothing reads a ready image's upload key anyway.
      await this.store.delete(source.key, signal).catch((err) => {
        this.log.warn({ err, imageId: image.id }, "could not delete a promoted upload (the sweep will)");
      });
    }
    // The moderation hook has the last word before "ready" (docs/moderation.md): hold, reject, or
    // no answer (RetryLaterError: the image stays processing) end the job here.
    if (this.moderation) {
      const facts = { placeholder, contentType: sniffed.mime, size: bytes.length, width: probe.width };
      const more = { height: probe.height, format: probe.format, sha256, publicBytes };
      const moderated = await this.moderation.decide(image, { ...facts, ...more }, signal);
      if (moderated !== "allow") return moderated;
    }
    const ready = await this.images.transition(image.id, ["processing"], "ready", {
      placeholder,
      contentType: sniffed.mime,
      size: bytes.length,
      width: probe.width,
      height: probe.height,
      format: probe.format,
      sha256,
      readyAt: new Date(),
      publicBytes,
    });
    if (!ready) return "skipped";
    this.metrics?.imagesFinalized.inc({ status: "ready", reason: "" });
    this.log.info(
      { imageId: image.id, width: probe.width, height: probe.height, format: probe.format },
      "image ready",
    );
    return "ready";
  }

  /**
   * The public original: the same coded pixels without EXIF (GPS), XMP, IPTC or comments, so a
   * public photo does not publish where it was taken. Only when the upload carried any; the stored
   * original stays untouched for its owner and signed URLs. Returns the copy's size (0: none).
   */
  private async storePublicCopy(
    image: ImageRecord,
    bytes: Buffer,
    format: string,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<number> {
    const stripped = stripMetadata(bytes, format);
    if (stripped === null) {
      if (format !== "gif") this.log.warn({ imageId: image.id, format }, "metadata could not be stripped");
      return 0;
    }
    if (!stripped.changed) return 0;
    await this.store.put(publicOriginalKey(image.id), stripped.bytes, {
      contentType,
      contentLength: stripped.bytes.length,
      signal,
    });
    return stripped.bytes.length;
  }

  private async reject(
    image: ImageRecord,
    reason: RejectReason,
    detail: string,
    signal?: AbortSignal,
  ): Promise<ProcessOutcome> {
    const rejected = await this.images.transition(image.id, ["processing"], "rejected", {
      rejectReason: reason,
      rejectDetail: detail,
    });
    // Rejected bytes are never kept; the sweeper catches a delete that fails here.
    await deleteUploadedBytes(this.store, image, signal);
    if (rejected) {
      this.metrics?.imagesFinalized.inc({ status: "rejected", reason });
      this.log.info({ imageId: image.id, reason, detail }, "image rejected");
    }
    return rejected ? "rejected" : "skipped";
  }

  /** The bytes, with the ETag of exactly the version read; past maxBytes, maxBytes + 1 of them. */
  private async read(
    key: string,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; etag: string | null } | null> {
    const obj = await this.store.getStream(key, signal);
    if (!obj) return null;
    const etag = obj.head.etag;
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of obj.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        obj.body.destroy();
        return { bytes: Buffer.alloc(maxBytes + 1), etag };
      }
      chunks.push(chunk);
    }
    return { bytes: Buffer.concat(chunks, total), etag };
  }
}

/** The deployment's policy narrowed by the image's profile snapshot; `of` names the profile in details. */
function effectiveLimits(policy: ProcessingPolicy, image: ImageRecord) {
  const p = image.profileLimits;
  return {
    maxBytes: Math.min(policy.maxBytes, p?.maxBytes ?? Number.MAX_SAFE_INTEGER),
    maxPixels: Math.min(policy.maxPixels, p?.maxPixels ?? Number.MAX_SAFE_INTEGER),
    allowedTypes: p ? policy.allowedTypes.filter((t) => p.allowedTypes.includes(t)) : policy.allowedTypes,
    maxWidth: p?.maxWidth ?? null,
    maxHeight: p?.maxHeight ?? null,
    of: image.profile ? ` (profile ${image.profile})` : "",
  };
}
