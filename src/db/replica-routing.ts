import type { ImageRecord, ImageStatus, Visibility } from "../domain/image.ts";
import type { QuotaLimits } from "../domain/quota.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { RecordInvalidator } from "../services/image-record-cache.ts";
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
import type { Replica, ReplicaSet } from "./replica-health.ts";

export type ReadTarget = "replica" | "primary";

/**
 * Read-your-writes across instances: every write of an owner's images opens that owner's window in
 * the shared KV (bulk invalidations open each image's); while it is open, the owner's reads and the
 * delivery of those images go to the primary. The window outlasts the largest lag a replica still
 * counted healthy can have (config checks it), so once it closes every healthy replica has the write.
 */
export class PrimaryWindows {
  constructor(
    private readonly kv: Pick<KeyValueStore, "set" | "getMany">,
    private readonly windowMs: number,
  ) {}

  // A failed mark costs only freshness on another instance, never the write: the KV error is dropped.
  markOwner(ownerId: string): Promise<void> {
    return this.kv.set(ownerWindowKey(ownerId), "1", this.windowMs).catch(() => undefined);
  }

  async markImages(ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map((id) => this.kv.set(imageWindowKey(id), "1", this.windowMs).catch(() => undefined)),
    );
  }

  /** True while a window of the owner (or of the image, when given) is open; a KV error says true. */
  async open(ownerId: string, imageId?: string): Promise<boolean> {
    const keys = imageId ? [ownerWindowKey(ownerId), imageWindowKey(imageId)] : [ownerWindowKey(ownerId)];
    try {
      return (await this.kv.getMany(keys)).some((v) => v !== null);
    } catch {
      return true;
    }
  }
}

export const ownerWindowKey = (ownerId: string) => `replica:w:o:${ownerId}`;
export const imageWindowKey = (id: string) => `replica:w:i:${id}`;

/** What the router needs of the replicas: one to read, and where to report a failed read. */
export interface ReplicaReadDeps {
  replicas: Pick<ReplicaSet, "pick" | "failed">;
  /** The images repository reading one replica's database. */
  repoOf: (replica: Replica) => ImagesRepository;
  windows: PrimaryWindows;
  counted: (target: ReadTarget) => void;
}

/**
 * Owner listings and owner lookups read a healthy replica unless the owner's window is open; every
 * write, every transition and the lookups that precede a write (idempotency key, dedup hash, by id
 * for the worker and the completion) stay on the primary. A replica read that fails is retried on
 * the primary, and the replica skipped until its next good check.
 */
export class ReplicaRoutingImagesRepository implements ImagesRepository {
  constructor(
    private readonly primary: ImagesRepository,
    private readonly deps: ReplicaReadDeps,
  ) {}

  insert(image: NewImage, limits?: QuotaLimits | null): Promise<ImageRecord> {
    return this.writing(image.ownerId, () => this.primary.insert(image, limits));
  }
  insertUnlessDuplicate(
    image: NewImage,
    dup: DuplicateOf,
    limits?: QuotaLimits | null,
  ): Promise<InsertUnlessDuplicateResult> {
    return this.writing(image.ownerId, () => this.primary.insertUnlessDuplicate(image, dup, limits));
  }
  insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult> {
    return this.writing(image.ownerId, () => this.primary.insertIfAbsent(image));
  }
  findReadyBySha256(ownerId: string, sha256: string, visibility: Visibility): Promise<ImageRecord | null> {
    return this.primary.findReadyBySha256(ownerId, sha256, visibility);
  }
  findById(id: string): Promise<ImageRecord | null> {
    return this.primary.findById(id);
  }
  findForOwner(ownerId: string, id: string): Promise<ImageRecord | null> {
    return this.ownerRead(ownerId, (repo) => repo.findForOwner(ownerId, id));
  }
  findByIdempotencyKey(ownerId: string, key: string): Promise<ImageRecord | null> {
    return this.primary.findByIdempotencyKey(ownerId, key);
  }
  listForOwner(ownerId: string, opts: ListOptions): Promise<ImageRecord[]> {
    return this.ownerRead(ownerId, (repo) => repo.listForOwner(ownerId, opts));
  }
  async transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch?: ImagePatch,
    opts?: TransitionOptions,
  ): Promise<ImageRecord | null> {
    const moved = await this.primary.transition(id, from, to, patch, opts);
    // The owner is known only from the moved row; marked before the caller (and the cache bump) goes on.
    if (moved) await this.deps.windows.markOwner(moved.ownerId);
    return moved;
  }
  update(
    id: string,
    ownerId: string,
    when: readonly ImageStatus[],
    patch: ImagePatch,
  ): Promise<ImageRecord | null> {
    return this.writing(ownerId, () => this.primary.update(id, ownerId, when, patch));
  }
  ping(): Promise<void> {
    return this.primary.ping();
  }

  /**
   * A delivery lookup by id: from a replica, unless the image's owner (or the image) has an open
   * window; an id the replica does not know is asked of the primary (it may be too new).
   */
  async findForDelivery(id: string, primary: (id: string) => Promise<ImageRecord | null>) {
    const replica = this.deps.replicas.pick();
    if (!replica) return this.fromPrimary(() => primary(id));
    let found: ImageRecord | null;
    try {
      found = await this.deps.repoOf(replica).findById(id);
    } catch (err) {
      this.deps.replicas.failed(replica, err);
      return this.fromPrimary(() => primary(id));
    }
    if (!found || (await this.deps.windows.open(found.ownerId, id)))
      return this.fromPrimary(() => primary(id));
    this.deps.counted("replica");
    return found;
  }

  private async writing<T>(ownerId: string, write: () => Promise<T>): Promise<T> {
    // Side by side: the mark costs the write no round trip, and is in place when the write returns.
    const [result] = await Promise.all([write(), this.deps.windows.markOwner(ownerId)]);
    return result;
  }

  private async ownerRead<T>(ownerId: string, read: (repo: ImagesRepository) => Promise<T>): Promise<T> {
    const replica = this.deps.replicas.pick();
    if (!replica || (await this.deps.windows.open(ownerId)))
      return this.fromPrimary(() => read(this.primary));
    try {
      const result = await read(this.deps.repoOf(replica));
      this.deps.counted("replica");
      return result;
    } catch (err) {
      this.deps.replicas.failed(replica, err);
      return this.fromPrimary(() => read(this.primary));
    }
  }

  private fromPrimary<T>(read: () => Promise<T>): Promise<T> {
    this.deps.counted("primary");
    return read();
  }
}

/**
 * The record-cache invalidator with windows: a bulk change (owner purge, unclaimed expiry) opens the
 * owner's or the images' windows before the cached versions change, so a lookup that sees the new
 * version also sees the window and does not cache a replica's older row under it.
 */
export function windowingInvalidator(inner: RecordInvalidator, windows: PrimaryWindows): RecordInvalidator {
  return {
    images: async (ids) => {
      await windows.markImages(ids);
      await inner.images(ids);
    },
    owner: async (ownerId) => {
      await windows.markOwner(ownerId);
      await inner.owner(ownerId);
    },
  };
}
