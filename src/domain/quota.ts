/** Per-owner quotas and the per-image variant cap (docs/quotas.md). Pure: no I/O. */
import { type AppError, ERRORS } from "./errors.ts";

/** null: unlimited. */
export interface QuotaLimits {
  maxBytes: number | null;
  maxImages: number | null;
}

/** An owner's usage as the counters hold it. */
export interface Usage {
  /** Originals of stored images, with their metadata-stripped public copies. */
  originalBytes: number;
  variantBytes: number;
  /** Declared sizes of uploads still in flight (pending or processing). */
  reservedBytes: number;
  /** Stored images (ready). */
  images: number;
  /** Images in flight (pending or processing). */
  pendingImages: number;
}

export const EMPTY_USAGE: Usage = {
  originalBytes: 0,
  variantBytes: 0,
  reservedBytes: 0,
  images: 0,
  pendingImages: 0,
};

export type QuotaLimitKind = "bytes" | "images";

export interface QuotaRefusal {
  limit: QuotaLimitKind;
  /** What counts against the limit now (bytes: stored + reserved; images: stored + in flight). */
  used: number;
  /** What the refused intent would add. */
  requested: number;
  max: number;
}

export function usedBytes(u: Usage): number {
  return u.originalBytes + u.variantBytes + u.reservedBytes;
}

/**
 * Whether one more upload of `bytes` fits. The image count is checked first: an owner at their
 * image limit is told so even when their bytes would also run out.
 */
export function quotaVerdict(usage: Usage, limits: QuotaLimits, bytes: number): QuotaRefusal | null {
  const images = usage.images + usage.pendingImages;
  if (limits.maxImages !== null && images + 1 > limits.maxImages) {
    return { limit: "images", used: images, requested: 1, max: limits.maxImages };
  }
  const used = usedBytes(usage);
  if (limits.maxBytes !== null && used + bytes > limits.maxBytes) {
    return { limit: "bytes", used, requested: bytes, max: limits.maxBytes };
  }
  return null;
}

export function hasLimits(limits: QuotaLimits): boolean {
  return limits.maxBytes !== null || limits.maxImages !== null;
}

/** How much variant storage one image may hold: a multiple of its original, never below a floor. */
export interface VariantCapPolicy {
  /** 0: no cap. */
  ratio: number;
  minBytes: number;
}

export function variantCap(originalBytes: number, policy: VariantCapPolicy): number | null {
  if (policy.ratio <= 0) return null;
  return Math.max(policy.ratio * originalBytes, policy.minBytes);
}

export interface StoredVariant {
  key: string;
  bytes: number;
  lastAccessedAt: Date;
}

/**
 * Which variants to drop so that `incoming` more bytes fit under `cap`: least recently accessed
 * first (ties: the larger first, it frees more). null when the new variant alone exceeds the cap:
 * it is then served but not stored, and nothing else is dropped for it.
 */
export function variantsToEvict(
  stored: readonly StoredVariant[],
  incoming: number,
  cap: number | null,
): string[] | null {
  if (cap === null) return [];
  if (incoming > cap) return null;
  let total = stored.reduce((sum, v) => sum + v.bytes, 0) + incoming;
  const order = [...stored].sort(
    (a, b) => a.lastAccessedAt.getTime() - b.lastAccessedAt.getTime() || b.bytes - a.bytes,
  );
  const evict: string[] = [];
  for (const v of order) {
    if (total <= cap) break;
    evict.push(v.key);
    total -= v.bytes;
  }
  return evict;
}

/** 413 when the bytes would not fit, 403 when the image count would not; both `quota_exceeded`. */
export function quotaExceeded(r: QuotaRefusal): AppError {
  const extra = { extra: { limit: r.limit, used: r.used, requested: r.requested, max: r.max } };
  return r.limit === "bytes"
    ? ERRORS.quotaExceededBytes(
        `${r.used} bytes used (stored and reserved) + ${r.requested} requested exceeds the quota of ${r.max} bytes`,
        extra,
      )
    : ERRORS.quotaExceededImages(`${r.used} images exist; the quota is ${r.max}`, extra);
}

/** Thrown by the guarded insert when the owner's row, read under its lock, leaves no room. */
export class QuotaExceededError extends Error {
  override name = "QuotaExceededError";
  constructor(readonly refusal: QuotaRefusal) {
    super(`quota exceeded: ${refusal.limit}`);
  }
}
