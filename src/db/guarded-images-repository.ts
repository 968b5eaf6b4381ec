import type { ImageRecord, ImageStatus, Visibility } from "../domain/image.ts";
import type { QuotaLimits } from "../domain/quota.ts";
import type { DatabaseBreaker } from "./breaker.ts";
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

/** Every call goes through the database circuit breaker (and its timeout). */
export class GuardedImagesRepository implements ImagesRepository {
  constructor(
    private readonly inner: ImagesRepository,
    private readonly breaker: DatabaseBreaker,
  ) {}

  insert(image: NewImage, limits?: QuotaLimits | null): Promise<ImageRecord> {
    return this.breaker.execute(() => this.inner.insert(image, limits));
  }
  insertUnlessDuplicate(
    image: NewImage,
    dup: DuplicateOf,
    limits?: QuotaLimits | null,
  ): Promise<InsertUnlessDuplicateResult> {
    return this.breaker.execute(() => this.inner.insertUnlessDuplicate(image, dup, limits));
  }
  insertIfAbsent(image: NewImage): Promise<InsertIfAbsentResult> {
    return this.breaker.execute(() => this.inner.insertIfAbsent(image));
  }
  findReadyBySha256(ownerId: string, sha256: string, visibility: Visibility): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.findReadyBySha256(ownerId, sha256, visibility));
  }
  findById(id: string): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.findById(id));
  }
  findForOwner(ownerId: string, id: string): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.findForOwner(ownerId, id));
  }
  findByIdempotencyKey(ownerId: string, key: string): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.findByIdempotencyKey(ownerId, key));
  }
  listForOwner(ownerId: string, opts: ListOptions): Promise<ImageRecord[]> {
    return this.breaker.execute(() => this.inner.listForOwner(ownerId, opts));
  }
  transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch?: ImagePatch,
    opts?: TransitionOptions,
  ): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.transition(id, from, to, patch, opts));
  }
  update(
    id: string,
    ownerId: string,
    when: readonly ImageStatus[],
    patch: ImagePatch,
  ): Promise<ImageRecord | null> {
    return this.breaker.execute(() => this.inner.update(id, ownerId, when, patch));
  }
  ping(): Promise<void> {
    return this.breaker.execute(() => this.inner.ping());
  }
}
