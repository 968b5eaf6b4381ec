import type {
  DuplicateOf,
  ImagePatch,
  ImagesRepository,
  InsertIfAbsentResult,
  InsertUnlessDuplicateResult,
  NewImage,
} from "../../src/db/images-repository.ts";
import type { ImageRecord, ImageStatus, Visibility } from "../../src/domain/image.ts";
import { pendingRecord } from "../../src/services/uploads.ts";

/** What a dead database connection throws (an errno isDatabaseUnavailable recognises). */
export function connectionRefused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
}

/**
 * An in-memory ImagesRepository for service-level tests of failure branches: `fail` makes the next
 * calls throw (a refused connection by default), as a database that went away would.
 */
export class FakeImagesRepository implements ImagesRepository {
  readonly rows = new Map<string, ImageRecord>();
  /** When set, every call throws what it returns (called per call, so it can count or switch). */
  fail: ((call: string) => Error | null) | null = null;
  calls: string[] = [];

  private check(call: string): void {
    this.calls.push(call);
    const err = this.fail?.(call);
    if (err) throw err;
  }

  async insert(image: NewImage): Promise<ImageRecord> {
    this.check("insert");
    const record = recordOf(image);
    this.rows.set(image.id, record);
    return record;
  }

  async insertUnlessDuplicate(image: NewImage, dup: DuplicateOf): Promise<InsertUnlessDuplicateResult> {
    this.check("insertUnlessDuplicate");
    const found = this.readyBySha256(image.ownerId, dup.sha256, dup.visibility);
    if (found) return { outcome: "duplicate", image: found };
    const record = recordOf(image);
    this.rows.set(image.id, record);
    return { outcome: "inserted", image: record };
  }

  async insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult> {
    this.check("insertIfAbsent");
    if (this.rows.has(image.id)) return { outcome: "exists" };
    const key = image.idempotencyKey;
    const holder = key === null ? null : this.byIdempotencyKey(image.ownerId, key);
    if (holder)
      return { outcome: "conflict", constraint: "images_owner_idempotency_key_uq", existingId: holder.id };
    this.rows.set(image.id, recordOf(image));
    return { outcome: "inserted" };
  }

  private byIdempotencyKey(ownerId: string, key: string): ImageRecord | null {
    for (const r of this.rows.values()) if (r.ownerId === ownerId && r.idempotencyKey === key) return r;
    return null;
  }

  async findReadyBySha256(ownerId: string, sha256: string, visibility: Visibility) {
    this.check("findReadyBySha256");
    return this.readyBySha256(ownerId, sha256, visibility);
  }

  private readyBySha256(ownerId: string, sha256: string, visibility: Visibility): ImageRecord | null {
    for (const r of this.rows.values()) {
      if (r.ownerId === ownerId && r.sha256 === sha256 && r.visibility === visibility && r.status === "ready")
        return r;
    }
    return null;
  }

  async findById(id: string) {
    this.check("findById");
    return this.rows.get(id) ?? null;
  }

  async findForOwner(ownerId: string, id: string) {
    this.check("findForOwner");
    const r = this.rows.get(id);
    return r && r.ownerId === ownerId ? r : null;
  }

  async findByIdempotencyKey(ownerId: string, key: string) {
    this.check("findByIdempotencyKey");
    return this.byIdempotencyKey(ownerId, key);
  }

  async listForOwner(ownerId: string) {
    this.check("listForOwner");
    return [...this.rows.values()].filter((r) => r.ownerId === ownerId);
  }

  async transition(id: string, from: readonly ImageStatus[], to: ImageStatus, patch: ImagePatch = {}) {
    this.check("transition");
    const r = this.rows.get(id);
    if (!r || !from.includes(r.status)) return null;
    const next = { ...r, ...patch, status: to, updatedAt: new Date() };
    this.rows.set(id, next);
    return next;
  }

  async update(id: string, ownerId: string, when: readonly ImageStatus[], patch: ImagePatch) {
    this.check("update");
    const r = this.rows.get(id);
    if (!r || r.ownerId !== ownerId || !when.includes(r.status)) return null;
    const next = { ...r, ...patch, updatedAt: new Date() };
    this.rows.set(id, next);
    return next;
  }

  async ping(): Promise<void> {
    this.check("ping");
  }
}

function recordOf(image: NewImage): ImageRecord {
  return pendingRecord(image, Date.now());
}
