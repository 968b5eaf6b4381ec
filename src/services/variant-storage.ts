import type { Logger } from "pino";
import type { UsageRepository } from "../db/usage-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { type VariantCapPolicy, variantCap } from "../domain/quota.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { QuotaMetrics } from "./quotas.ts";

/**
 * Variant accounting: each stored variant has a row (its bytes count towards the owner's usage),
 * and one image's variants stay under a cap, least recently accessed dropped first.
 */
export interface VariantUsage {
  repo: Pick<UsageRepository, "recordVariant" | "forgetVariant" | "touchVariant">;
  cap: VariantCapPolicy;
  /**
   * A cache hit moves the variant's last access at most this often per instance, and the database
   * skips the write within it too: eviction needs minutes of precision, not a write per hit (and
   * behind a CDN the origin sees few hits anyway).
   */
  touchIntervalMs: number;
  metrics?: Pick<QuotaMetrics, "variantEvictions" | "variantsNotStored">;
}

/** Bounds the in-process map of recent touches. */
const MAX_TOUCHED = 10_000;

/** Where VariantsService writes variants: counted, capped per image, last access tracked. */
export class VariantStorage {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly objects: ObjectStore,
    /** Absent: variants are stored uncounted and uncapped. */
    private readonly usage: VariantUsage | null,
    private readonly log: Logger,
  ) {}

  /**
   * Writes a variant's object, counted and under its image's cap when accounting is on. false: it
   * is larger than the cap on its own, so it is served but not kept.
   */
  async write(
    image: Pick<ImageRecord, "id" | "ownerId">,
    originalBytes: number,
    key: string,
    out: { data: Buffer; contentType: string },
  ): Promise<boolean> {
    const put = () =>
      this.objects.put(key, out.data, { contentType: out.contentType, contentLength: out.data.length });
    if (!this.usage) {
      await put();
      return true;
    }
    const { repo, metrics } = this.usage;
    const cap = variantCap(originalBytes, this.usage.cap);
    // The row first: a crash before the write over-counts (the doctor reports it), never under-counts.
    const r = await repo.recordVariant({
      imageId: image.id,
      ownerId: image.ownerId,
      key,
      bytes: out.data.length,
      cap,
    });
    if (r.outcome === "gone") throw ERRORS.imageNotFound();
    if (r.outcome === "too_large") {
      metrics?.variantsNotStored.inc();
      this.log.info(
        { imageId: image.id, key, bytes: out.data.length, cap },
        "variant over its image's cap: not stored",
      );
      return false;
    }
    try {
      await put();
    } catch (err) {
      await repo.forgetVariant(image.id, key).catch(() => undefined);
      throw err;
    }
    for (const evicted of r.evicted) {
      // Its row is gone already; an object left behind is the doctor's to report.
      await this.objects.delete(evicted).catch((err) => {
        this.log.warn({ err, imageId: image.id, key: evicted }, "could not delete an evicted variant");
      });
    }
    if (r.evicted.length > 0) {
      metrics?.variantEvictions.inc(r.evicted.length);
      this.log.debug({ imageId: image.id, evicted: r.evicted }, "variants evicted under the cap");
    }
    return true;
  }

  /** Moves a variant's last access on a hit, throttled (see VariantUsage.touchIntervalMs); never awaited. */
  touch(imageId: string, key: string): void {
    if (!this.usage) return;
    const interval = this.usage.touchIntervalMs;
    const now = Date.now();
    const last = this.touched.get(key);
    if (last !== undefined && now - last < interval) return;
    if (this.touched.size >= MAX_TOUCHED) this.touched.clear();
    this.touched.set(key, now);
    this.usage.repo
      .touchVariant(imageId, key, interval)
      .catch((err) => this.log.debug({ err: String(err), key }, "could not record a variant access"));
  }
}
