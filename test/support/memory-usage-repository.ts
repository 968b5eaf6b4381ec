import type { UsageRepository, VariantWrite, VariantWriteResult } from "../../src/db/usage-repository.ts";
import {
  EMPTY_USAGE,
  type QuotaLimits,
  type StoredVariant,
  type Usage,
  variantsToEvict,
} from "../../src/domain/quota.ts";

/**
 * An in-memory UsageRepository for service-level tests: usage is set by the test, variants follow
 * the same eviction rule as the database's. `fail` makes every call throw what it returns.
 */
export class MemoryUsageRepository implements UsageRepository {
  readonly usages = new Map<string, Usage>();
  readonly overrides = new Map<string, QuotaLimits>();
  readonly rows = new Map<string, StoredVariant[]>();
  /** Images recordVariant treats as deleted. */
  readonly gone = new Set<string>();
  fail: (() => Error) | null = null;
  calls: string[] = [];
  private clock = 0;

  private check(call: string): void {
    this.calls.push(call);
    if (this.fail) throw this.fail();
  }

  async usage(ownerId: string): Promise<Usage> {
    this.check("usage");
    return this.usages.get(ownerId) ?? { ...EMPTY_USAGE };
  }
  async quotaOverride(ownerId: string): Promise<QuotaLimits | null> {
    this.check("quotaOverride");
    return this.overrides.get(ownerId) ?? null;
  }
  async setQuotaOverride(ownerId: string, limits: QuotaLimits): Promise<void> {
    this.check("setQuotaOverride");
    this.overrides.set(ownerId, limits);
  }
  async deleteQuotaOverride(ownerId: string): Promise<boolean> {
    this.check("deleteQuotaOverride");
    return this.overrides.delete(ownerId);
  }
  async recordVariant(w: VariantWrite): Promise<VariantWriteResult> {
    this.check("recordVariant");
    if (this.gone.has(w.imageId)) return { outcome: "gone" };
    const stored = (this.rows.get(w.imageId) ?? []).filter((v) => v.key !== w.key);
    const evicted = variantsToEvict(stored, w.bytes, w.cap);
    if (evicted === null) return { outcome: "too_large" };
    const kept = stored.filter((v) => !evicted.includes(v.key));
    kept.push({ key: w.key, bytes: w.bytes, lastAccessedAt: new Date(++this.clock) });
    this.rows.set(w.imageId, kept);
    return { outcome: "recorded", evicted };
  }
  async forgetVariant(imageId: string, key: string): Promise<void> {
    this.check("forgetVariant");
    this.rows.set(
      imageId,
      (this.rows.get(imageId) ?? []).filter((v) => v.key !== key),
    );
  }
  async touchVariant(imageId: string, key: string): Promise<void> {
    this.check("touchVariant");
    for (const v of this.rows.get(imageId) ?? [])
      if (v.key === key) v.lastAccessedAt = new Date(++this.clock);
  }
  async variants(imageId: string): Promise<StoredVariant[]> {
    return [...(this.rows.get(imageId) ?? [])];
  }
}
