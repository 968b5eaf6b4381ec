import { Counter, type Registry } from "prom-client";
import { isDatabaseUnavailable } from "../db/breaker.ts";
import type { UsageRepository } from "../db/usage-repository.ts";
import type { AppError } from "../domain/errors.ts";
import {
  hasLimits,
  type QuotaLimits,
  type QuotaRefusal,
  quotaExceeded,
  quotaVerdict,
  type Usage,
} from "../domain/quota.ts";

/** Quota counters, registered on the instance's registry (served at /metrics). */
export function createQuotaMetrics(registry: Registry) {
  return {
    refusals: new Counter({
      name: "imgup_quota_refusals_total",
      help: "Intents and proxy uploads refused by an owner's quota, by limit (bytes, images)",
      labelNames: ["limit"],
      registers: [registry],
    }),
    variantEvictions: new Counter({
      name: "imgup_variant_evictions_total",
      help: "Variants dropped to keep an image under its variant-storage cap",
      registers: [registry],
    }),
    variantsNotStored: new Counter({
      name: "imgup_variants_not_stored_total",
      help: "Variants served but not stored: larger than their image's variant cap on their own",
      registers: [registry],
    }),
  };
}

export type QuotaMetrics = ReturnType<typeof createQuotaMetrics>;

const MAX_CACHED_OVERRIDES = 10_000;

export interface UsageView {
  usage: Usage;
  limits: QuotaLimits;
  /** Whether the limits are the owner's override or the deployment's defaults. */
  source: "override" | "default";
}

/**
 * Per-owner quotas: the limits that apply (an override, else the configured defaults), the check
 * before an upload URL is issued, and what GET /v1/usage shows. The exact check, under the owner's
 * row lock, is the repository's guarded insert; this one only spares the storage a URL or a
 * multipart upload that would be refused anyway.
 */
export class QuotaService {
  /** Overrides (null: none) read recently: an intent should not cost a lookup that almost never changes. */
  private readonly overrides = new Map<string, { limits: QuotaLimits | null; at: number }>();

  constructor(
    private readonly repo: UsageRepository,
    private readonly defaults: QuotaLimits,
    private readonly metrics: QuotaMetrics | null = null,
    /** How long another instance's override change may go unseen here. */
    private readonly overrideTtlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async limitsFor(ownerId: string): Promise<{ limits: QuotaLimits; source: "override" | "default" }> {
    const override = await this.override(ownerId);
    return override ? { limits: override, source: "override" } : { limits: this.defaults, source: "default" };
  }

  private async override(ownerId: string): Promise<QuotaLimits | null> {
    const cached = this.overrides.get(ownerId);
    if (cached && this.now() - cached.at < this.overrideTtlMs) return cached.limits;
    const limits = await this.repo.quotaOverride(ownerId);
    this.remember(ownerId, limits);
    return limits;
  }

  private remember(ownerId: string, limits: QuotaLimits | null): void {
    if (this.overrides.size >= MAX_CACHED_OVERRIDES) this.overrides.clear();
    this.overrides.set(ownerId, { limits, at: this.now() });
  }

  /**
   * Throws quota_exceeded when an upload of `bytes` would not fit; else the limits for the guarded
   * insert. null while the database is unreachable: the intent is buffered unchecked (the counters
   * live in the database), which docs/quotas.md states as the outage's bounded overshoot.
   */
  async check(ownerId: string, bytes: number): Promise<QuotaLimits | null> {
    let limits: QuotaLimits;
    let usage: Usage;
    try {
      limits = (await this.limitsFor(ownerId)).limits;
      if (!hasLimits(limits)) return limits;
      usage = await this.repo.usage(ownerId);
    } catch (err) {
      if (isDatabaseUnavailable(err)) return null;
      throw err;
    }
    const refusal = quotaVerdict(usage, limits, bytes);
    if (refusal) throw this.refused(refusal);
    return limits;
  }

  /** The typed error for a refusal, counted. */
  refused(refusal: QuotaRefusal): AppError {
    this.metrics?.refusals.inc({ limit: refusal.limit });
    return quotaExceeded(refusal);
  }

  async view(ownerId: string): Promise<UsageView> {
    const [{ limits, source }, usage] = await Promise.all([
      this.limitsFor(ownerId),
      this.repo.usage(ownerId),
    ]);
    return { usage, limits, source };
  }

  async setOverride(ownerId: string, limits: QuotaLimits): Promise<void> {
    await this.repo.setQuotaOverride(ownerId, limits);
    this.remember(ownerId, limits);
  }

  async deleteOverride(ownerId: string): Promise<boolean> {
    const deleted = await this.repo.deleteQuotaOverride(ownerId);
    this.remember(ownerId, null);
    return deleted;
  }
}
