import { type ImageFacts, NOT_STORED, type UsageAuditRepository } from "../db/usage-audit-repository.ts";
import { imagePrefix, parseKey } from "../domain/keys.ts";
import type { ListedObject, ObjectStore } from "../storage/object-store.ts";

interface Bytes {
  originals: number;
  variants: number;
}

export interface UsageDrift {
  ownerId: string;
  recorded: Bytes;
  storage: Bytes;
}

export interface UsageReport {
  /** Owners whose stored bytes were compared. */
  ownersChecked: number;
  /** Owners whose record disagrees with the storage (after a recount of just them). */
  drift: number;
  samples: UsageDrift[];
  /** With --fix-usage: owners repaired (rows rebuilt from the storage, counters recomputed); else null. */
  fixed: number | null;
}

const PAGE = 1000;
const SAMPLES = 5;
/** Owners recounted one image at a time at the end; past it, drift is reported as listed. */
const MAX_RECOUNTS = 1000;

const stores = (status: string) => !(NOT_STORED as readonly string[]).includes(status);
const live = (status: string) =>
  status === "pending" || status === "processing" || status === "ready" || status === "held";

/**
 * The doctor's usage check. The doctor's walk of the whole listing feeds `page`; `finish` compares
 * each owner's originals and variants in the storage with the usage record. Objects written while
 * the walk ran can look like drift, so each owner that disagrees is recounted on its own (its
 * images' prefixes listed again) before it is reported; with `fix`, that recount also rebuilds the
 * variant rows and public-copy sizes from the objects and recomputes the counters from the rows.
 */
export class UsageAudit {
  private readonly seen = new Map<string, Bytes>();

  constructor(
    private readonly repo: UsageAuditRepository,
    private readonly store: ObjectStore,
  ) {}

  async page(objects: readonly ListedObject[]): Promise<void> {
    const parsed = objects.map((o) => ({ o, key: parseKey(o.key) }));
    const facts = await this.repo.facts(parsed.flatMap((p) => (p.key ? [p.key.imageId] : [])));
    for (const { o, key } of parsed) {
      const image = key && facts.get(key.imageId);
      if (!key || !image) continue;
      const owner = this.owner(image.ownerId);
      if ((key.kind === "original" || key.kind === "public") && stores(image.status))
        owner.originals += o.size;
      if (key.kind === "variant" && live(image.status)) owner.variants += o.size;
    }
  }

  async finish(opts: { fix?: boolean; signal?: AbortSignal } = {}): Promise<UsageReport> {
    // Owners the record charges but the listing never showed (their objects are gone) count too.
    for (let after: string | null = null; ; ) {
      const page = await this.repo.recordedPage(after, PAGE);
      for (const r of page) this.owner(r.ownerId);
      if (page.length < PAGE) break;
      after = page.at(-1)?.ownerId ?? null;
    }
    const report: UsageReport = {
      ownersChecked: this.seen.size,
      drift: 0,
      samples: [],
      fixed: opts.fix ? 0 : null,
    };
    let recounts = 0;
    for (const [ownerId, listed] of this.seen) {
      opts.signal?.throwIfAborted();
      let recorded = await this.repo.recorded(ownerId);
      if (same(recorded, listed)) continue;
      let storage = listed;
      if (recounts++ < MAX_RECOUNTS) {
        storage = await this.recount(ownerId, opts.fix === true, opts.signal);
        if (opts.fix) {
          await this.repo.recompute(ownerId);
          if (report.fixed !== null) report.fixed++;
        }
        recorded = await this.repo.recorded(ownerId);
        if (same(recorded, storage)) continue;
      }
      report.drift++;
      if (report.samples.length < SAMPLES) {
        report.samples.push({
          ownerId,
          recorded: { originals: recorded.originalBytes, variants: recorded.variantBytes },
          storage,
        });
      }
    }
    return report;
  }

  /** The owner's bytes from a listing of each of their live images; with fix, the rows follow the objects. */
  private async recount(ownerId: string, fix: boolean, signal?: AbortSignal): Promise<Bytes> {
    const total: Bytes = { originals: 0, variants: 0 };
    for (let after: string | null = null; ; ) {
      const images = await this.repo.liveImages(ownerId, after, PAGE);
      for (const image of images) {
        const bytes = await this.recountImage(image, fix, signal);
        total.originals += bytes.originals;
        total.variants += bytes.variants;
      }
      if (images.length < PAGE) break;
      after = images.at(-1)?.id ?? null;
    }
    return total;
  }

  private async recountImage(image: ImageFacts, fix: boolean, signal?: AbortSignal): Promise<Bytes> {
    const variants = new Map<string, number>();
    let originals = 0;
    let publicBytes = 0;
    for (let cursor: string | undefined; ; ) {
      const page = await this.store.list(imagePrefix(image.id), { cursor, limit: PAGE, signal });
      for (const o of page.objects) {
        const kind = parseKey(o.key)?.kind;
        if (kind === "variant") variants.set(o.key, o.size);
        if (kind === "original" || kind === "public") originals += o.size;
        if (kind === "public") publicBytes = o.size;
      }
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    if (fix) {
      const rows = await this.repo.variantRows(image.id);
      for (const [key, size] of variants) {
        if (rows.get(key) !== size) await this.repo.upsertVariant(image.id, image.ownerId, key, size);
      }
      await this.repo.deleteVariants(
        image.id,
        [...rows.keys()].filter((key) => !variants.has(key)),
      );
      if (stores(image.status) && publicBytes !== image.publicBytes)
        await this.repo.setPublicBytes(image.id, publicBytes);
    }
    const variantBytes = [...variants.values()].reduce((a, b) => a + b, 0);
    return { originals: stores(image.status) ? originals : 0, variants: variantBytes };
  }

  private owner(ownerId: string): Bytes {
    let b = this.seen.get(ownerId);
    if (!b) {
      b = { originals: 0, variants: 0 };
      this.seen.set(ownerId, b);
    }
    return b;
  }
}

function same(recorded: { originalBytes: number; variantBytes: number }, storage: Bytes): boolean {
  return recorded.originalBytes === storage.originals && recorded.variantBytes === storage.variants;
}
