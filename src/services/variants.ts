import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import { type AppError, ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { variantKey } from "../domain/keys.ts";
import type { Presets } from "../domain/presets.ts";
import {
  canonicalSpec,
  type OutputFormat,
  parseSpec,
  type SpecLimits,
  type TransformSpec,
} from "../domain/transform-spec.ts";
import { verifyTransformSignature } from "../domain/url-signature.ts";
import { type ImageWork, isResourceVerdict, type WorkOptions } from "../imaging/image-work.ts";
import { negotiateFormat } from "../imaging/negotiate.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { BoundedQueue } from "./bounded-queue.ts";
import type { Authorized, DeliveryService } from "./delivery.ts";
import { type FlightOptions, VariantFlight } from "./variant-flight.ts";
import { VariantStorage, type VariantUsage } from "./variant-storage.ts";

export interface VariantRequest {
  imageId: string;
  /** The request path, which a private image's exp/sig signs. */
  path: string;
  query: { exp?: string; sig?: string };
  accept: string | undefined;
}

export interface Variant {
  auth: Authorized;
  etag: string;
  contentType: string;
  lastModified: Date;
  /** Accept chose the format: the response must say `Vary: Accept`. */
  negotiated: boolean;
  /** null when the client's copy is current (If-None-Match matched): send 304. */
  open: () => Promise<
    | { body: Buffer | Readable; size: number; redirect?: undefined }
    | { redirect: { location: string; maxAgeSeconds: number } }
  >;
}

/**
 * What a miss costs, charged by the route. The client's budget is charged for every request that
 * misses, before it joins a transform already running: each client pays for itself and gets its own
 * 429. The owner's budget is charged once per transform, by the request that starts it: joiners add
 * no work, so a herd of clients on one new image is not refused by its owner's budget.
 */
export interface MissCharges {
  client: () => Promise<void>;
  owner: () => Promise<void>;
}

export interface VariantPolicy {
  maxPixels: number;
  maxBytes: number;
  animated: boolean;
  specLimits: SpecLimits;
  /** HMAC keys of transform URLs; the first signs, all verify. */
  signingKeys: readonly string[];
  /** Hard deadline of one on-the-fly transform. */
  timeoutMs: number;
  maxJpegScans: number;
  /** A variant that ran out of time or memory is refused from memory, not retried, this long. */
  failureTtlSeconds: number;
}

const EXT: Record<OutputFormat, string> = { jpeg: "jpg", png: "png", webp: "webp", avif: "avif", gif: "gif" };
const CONTENT_TYPE: Record<OutputFormat, string> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
};

// Waiters on another instance's transform allow for its deadline plus a claimant that queued
// briefly before it started (the claim is taken before the queue slot, so waiters take none).
const WAIT_MARGIN_MS = 10_000;

/**
 * Variants: looked up in the storage by their key; on a miss, one transform per variant however
 * many requests ask at once, in this process and across every instance sharing the KV and the
 * store (single-flight), behind a bounded queue, stored, then served.
 */
export class VariantsService {
  /** Joined first, so one process's callers share one flight without KV traffic. */
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly storage: VariantStorage;
  private readonly flight: VariantFlight;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly store: ObjectStore,
    private readonly presets: Presets,
    private readonly queue: BoundedQueue,
    private readonly policy: VariantPolicy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly work: ImageWork,
    /** Shared by instances: remembers variants whose transform ran out of time or memory. */
    private readonly kv: KeyValueStore,
    /** Absent: variants are stored uncounted and uncapped. */
    usage: VariantUsage | null = null,
    /** The cluster-wide claim's timings; tests shorten them. */
    flight: Partial<FlightOptions> = {},
  ) {
    this.storage = new VariantStorage(store, usage, log);
    this.flight = new VariantFlight(
      {
        kv,
        stored: async (key) => {
          const hit = await store.getStream(key);
          return hit ? streamToBuffer(hit.body) : null;
        },
        failure: (key) => this.rememberedFailure(key),
        onOutcome: (outcome) => metrics.transformClaims.inc({ outcome }),
        log,
      },
      { maxWaitMs: policy.timeoutMs + WAIT_MARGIN_MS, ...flight },
    );
  }

  async preset(name: string, req: VariantRequest, charges: MissCharges): Promise<Variant> {
    const spec = Object.hasOwn(this.presets, name) ? this.presets[name] : undefined;
    if (!spec) throw ERRORS.presetNotFound(`no preset "${name}"`);
    return this.variant(spec, req, charges);
  }

  async signed(
    signature: string,
    specText: string,
    req: VariantRequest,
    charges: MissCharges,
  ): Promise<Variant> {
    const spec = parseSpec(specText, this.policy.specLimits);
    if (!verifyTransformSignature(this.policy.signingKeys, canonicalSpec(spec), req.imageId, signature)) {
      throw ERRORS.invalidSignature("the URL signature does not match its spec and image");
    }
    return this.variant(spec, req, charges);
  }

  /**
   * Worker side: generate a variant ahead of the first request (eager presets), within the
   * processing job's deadline. A verdict (unprocessable_image) is thrown for the job to judge.
   */
  async generate(
    image: ImageRecord,
    original: Buffer,
    spec: TransformSpec,
    format: OutputFormat,
    budget: WorkOptions,
  ): Promise<void> {
    const key = this.keyOf(image.id, spec, format);
    if (await this.store.head(key)) return;
    const out = await this.work.transform(original, { ...spec, format }, this.limits(), budget);
    await this.storage.write(image, original.length, key, out);
  }

  private async variant(spec: TransformSpec, req: VariantRequest, charges: MissCharges): Promise<Variant> {
    const auth = await this.delivery.authorize(req.imageId, req.path, req.query);
    const { image } = auth;
    const { format, negotiated } = negotiateFormat(spec.format, req.accept, image.format ?? "jpeg");
    const key = this.keyOf(image.id, spec, format);
    const etag = `"${createHash("sha256").update(`${image.sha256}\n${key}`).digest("base64url").slice(0, 32)}"`;
    const open = async () => {
      const hit = await this.delivery.openVariant(key, auth);
      if (hit) {
        this.metrics.variantRequests.inc({ result: "hit" });
        this.storage.touch(image.id, key);
        return hit;
      }
      this.metrics.variantRequests.inc({ result: "miss" });
      // Answered from memory, before any token or queue slot: the same bytes would fail the same way.
      const failed = await this.rememberedFailure(key);
      if (failed) throw failed;
      // The client's own budget before it joins: a caller within budget never shares another
      // client's 429. The owner's once, by whoever does the work (see MissCharges).
      await charges.client();
      const data = await this.singleFlight(key, async () => {
        await charges.owner();
        return this.queue.run(image.ownerId, () => this.transformAndStore(image, spec, format, key));
      });
      return { body: data, size: data.length };
    };
    return {
      auth,
      etag,
      contentType: CONTENT_TYPE[format],
      lastModified: image.readyAt ?? image.updatedAt,
      negotiated,
      open,
    };
  }

  private singleFlight(key: string, work: () => Promise<Buffer>): Promise<Buffer> {
    const running = this.inflight.get(key);
    if (running) return running;
    // The claim is taken before the queue slot: a waiter for another instance's work holds none.
    const p = this.flight.run(key, work).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async transformAndStore(
    image: ImageRecord,
    spec: TransformSpec,
    format: OutputFormat,
    key: string,
  ) {
    // Another instance may have made it while we queued.
    const existing = await this.store.getStream(key);
    if (existing) return streamToBuffer(existing.body);
    const obj = await this.store.getStream(image.objectKey);
    if (!obj) throw ERRORS.imageNotFound();
    const original = await streamToBuffer(obj.body, this.policy.maxBytes);
    const end = this.metrics.transformSeconds.startTimer({ format });
    let out: Awaited<ReturnType<ImageWork["transform"]>>;
    try {
      out = await this.work.transform(original, { ...spec, format }, this.limits(), {
        timeoutMs: this.policy.timeoutMs,
      });
    } catch (err) {
      if (isResourceVerdict(err)) await this.rememberFailure(image.id, key, err as AppError);
      throw err;
    }
    end();
    this.metrics.transforms.inc({ format });
    // The image may have been deleted while it was transformed: no variant may outlive it. Checked
    // before the write, and again after it, since the delete job may have run in between.
    if (!(await this.delivery.isDeliverable(image.id))) throw ERRORS.imageNotFound();
    if (!(await this.storage.write(image, image.size ?? 0, key, out))) return out.data;
    if (!(await this.delivery.isDeliverable(image.id))) {
      await this.store.delete(key);
      this.log.info({ imageId: image.id, key }, "image deleted during its transform; variant discarded");
      throw ERRORS.imageNotFound();
    }
    this.log.debug({ imageId: image.id, key, bytes: out.data.length }, "variant generated");
    return out.data;
  }

  private limits() {
    const { maxPixels, animated, maxJpegScans } = this.policy;
    return { maxPixels, animated, maxJpegScans };
  }

  private async rememberFailure(imageId: string, key: string, err: AppError): Promise<void> {
    this.log.warn({ imageId, key, reason: err.extra.reason, detail: err.message }, "transform stopped");
    if (this.policy.failureTtlSeconds <= 0) return;
    const value = JSON.stringify({ reason: err.extra.reason, detail: err.message });
    await this.kv
      .set(failureKey(key), value, this.policy.failureTtlSeconds * 1000)
      .catch((e) => this.log.warn({ err: String(e) }, "could not remember a failed transform"));
  }

  private async rememberedFailure(key: string): Promise<AppError | null> {
    if (this.policy.failureTtlSeconds <= 0) return null;
    const raw = await this.kv.get(failureKey(key)).catch(() => null);
    if (!raw) return null;
    let seen: { reason?: unknown; detail?: unknown };
    try {
      seen = JSON.parse(raw);
    } catch {
      return null;
    }
    const detail = `${typeof seen.detail === "string" ? seen.detail : "the transform failed"} (not retried for now)`;
    return ERRORS.unprocessableImage(detail, { extra: { reason: seen.reason } });
  }

  private keyOf(imageId: string, spec: TransformSpec, format: OutputFormat): string {
    return variantKey(imageId, canonicalSpec({ ...spec, format }), EXT[format]);
  }
}

function failureKey(variant: string): string {
  return `transform-failed:${variant}`;
}

async function streamToBuffer(body: Readable, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      body.destroy();
      throw ERRORS.payloadTooLarge("the original is larger than the configured limit");
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
