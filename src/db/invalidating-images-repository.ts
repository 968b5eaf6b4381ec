import type { ImageRecord, ImageStatus, Visibility } from "../domain/image.ts";
import type { QuotaLimits } from "../domain/quota.ts";
import type { RecordInvalidator } from "../services/image-record-cache.ts";
import type { ClaimsRepository, ExpiredImage } from "./claims-repository.ts";
import type {
  DuplicateOf,
  ImagePatch,
  ImagesRepository,
  InsertIfAbsentResult,
  InsertUnlessDuplicateResult,
  ListOptions,
  NewImage,
  TransitionOptions,
} from "./images-repository.ts";
import type { MaintenanceRepository } from "./maintenance-repository.ts";

/**
 * Delivery caches image records per instance (ImageRecordCache); every write of the images table
 * that could change what delivery serves replaces the image's version in the KV once it has
 * committed, here, below every service, so no write path can forget it. The bump runs even when
 * the write failed: a timeout may still have committed. Only rows that were ready can be cached,
 * so a write that cannot touch a ready row (pending to processing, ...) bumps nothing: the upload
 * path keeps its round trips.
 */
export class InvalidatingImagesRepository implements ImagesRepository {
  constructor(
    private readonly inner: ImagesRepository,
    private readonly invalidate: RecordInvalidator,
  ) {}

  // New rows: no instance can hold a record of an id that did not exist.
  insert(image: NewImage, limits?: QuotaLimits | null): Promise<ImageRecord> {
    return this.inner.insert(image, limits);
  }
  insertUnlessDuplicate(
    image: NewImage,
    dup: DuplicateOf,
    limits?: QuotaLimits | null,
  ): Promise<InsertUnlessDuplicateResult> {
    return this.inner.insertUnlessDuplicate(image, dup, limits);
  }
  insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult> {
    return this.inner.insertIfAbsent(image);
  }
  findReadyBySha256(ownerId: string, sha256: string, visibility: Visibility): Promise<ImageRecord | null> {
    return this.inner.findReadyBySha256(ownerId, sha256, visibility);
  }
  findById(id: string): Promise<ImageRecord | null> {
    return this.inner.findById(id);
  }
  findForOwner(ownerId: string, id: string): Promise<ImageRecord | null> {
    return this.inner.findForOwner(ownerId, id);
  }
  findByIdempotencyKey(ownerId: string, key: string): Promise<ImageRecord | null> {
    return this.inner.findByIdempotencyKey(ownerId, key);
  }
  listForOwner(ownerId: string, opts: ListOptions): Promise<ImageRecord[]> {
    return this.inner.listForOwner(ownerId, opts);
  }
  transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch?: ImagePatch,
    opts?: TransitionOptions,
  ): Promise<ImageRecord | null> {
    const write = () => this.inner.transition(id, from, to, patch, opts);
    // held: delivered to its owner, so leaving it (or reaching it) changes what delivery may serve.
    const delivered = from.includes("ready") || from.includes("held") || to === "held";
    return delivered ? this.thenBump([id], write) : write();
  }
  update(
    id: string,
    ownerId: string,
    when: readonly ImageStatus[],
    patch: ImagePatch,
  ): Promise<ImageRecord | null> {
    const write = () => this.inner.update(id, ownerId, when, patch);
    return when.includes("ready") || when.includes("held") ? this.thenBump([id], write) : write();
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }

  private thenBump<T>(ids: readonly string[], write: () => Promise<T>): Promise<T> {
    return afterWrite(write, () => this.invalidate.images(ids));
  }
}

/**
 * The bump after the write, whether it succeeded or not; a failed bump fails the call (the change
 * is committed but an instance may still serve the old record until its cache's max age), so the
 * caller sees an error and may retry: every write here is idempotent.
 */
async function afterWrite<T>(write: () => Promise<T>, bump: () => Promise<void>): Promise<T> {
  let result: T;
  try {
    result = await write();
  } catch (err) {
    await bump().catch(() => undefined);
    throw err;
  }
  await bump();
  return result;
}

/** The owner purge's bulk updates (MaintenanceRepository) bump the owner's version or each image's. */
export function invalidatingMaintenance(
  repo: MaintenanceRepository,
  invalidate: RecordInvalidator,
): MaintenanceRepository {
  const markOwnerDeleted = repo.markOwnerDeleted.bind(repo);
  const markDeleted = repo.markDeleted.bind(repo);
  return Object.assign(Object.create(repo) as MaintenanceRepository, {
    markOwnerDeleted: (ownerId: string, limit: number) =>
      afterWrite(
        () => markOwnerDeleted(ownerId, limit),
        () => invalidate.owner(ownerId),
      ),
    markDeleted: (ids: readonly string[]) =>
      afterWrite(
        () => markDeleted(ids),
        () => invalidate.images(ids),
      ),
  });
}

/** The unclaimed expiry deletes ready images in bulk: each one's version is bumped. */
export function invalidatingClaims(repo: ClaimsRepository, invalidate: RecordInvalidator): ClaimsRepository {
  const expireUnclaimed = repo.expireUnclaimed.bind(repo);
  return Object.assign(Object.create(repo) as ClaimsRepository, {
    expireUnclaimed: async (now: Date, limit: number): Promise<ExpiredImage[]> => {
      const expired = await expireUnclaimed(now, limit);
      // Which rows moved is known only from the answer; a failed statement changed none.
      await invalidate.images(expired.map((e) => e.id));
      return expired;
    },
  });
}
