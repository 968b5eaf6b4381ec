import type { ImageRecord } from "../domain/image.ts";
import { uploadKey } from "../domain/keys.ts";
import type { ObjectHead, ObjectStore } from "../storage/object-store.ts";

/** Where an image's uploaded bytes are, and what the storage says of them. */
export interface UploadSource {
  key: string;
  head: ObjectHead;
  /** The bytes still wait at the upload key: after validation they are copied to the original. */
  needsPromotion: boolean;
}

/**
 * The upload key; else the original itself, which holds the bytes when an earlier run promoted
 * them and died before "ready", or when the intent was signed before upload keys existed.
 */
export async function locateUpload(
  store: ObjectStore,
  image: Pick<ImageRecord, "id" | "objectKey">,
  signal?: AbortSignal,
): Promise<UploadSource | null> {
  const staged = await store.head(uploadKey(image.id), signal);
  if (staged) return { key: staged.key, head: staged, needsPromotion: true };
  const original = await store.head(image.objectKey, signal);
  return original ? { key: original.key, head: original, needsPromotion: false } : null;
}

/**
 * Makes the validated bytes the image's original: a copy inside the storage pinned to the version
 * that was read (its ETag), so bytes written to the upload key meanwhile are never promoted;
 * without an ETag the bytes read are written. false: the upload changed since it was read, and
 * must be validated again. The upload object stays (the caller deletes it once the image is ready).
 */
export async function promoteUpload(
  store: ObjectStore,
  image: ImageRecord,
  read: { key: string; etag: string | null; bytes: Buffer; contentType: string },
  signal?: AbortSignal,
): Promise<boolean> {
  if (read.etag !== null) {
    if (!(await store.copyIfMatch(read.key, image.objectKey, read.etag, signal))) return false;
  } else {
    await store.put(image.objectKey, read.bytes, {
      contentType: read.contentType,
      contentLength: read.bytes.length,
      signal,
    });
  }
  return true;
}

/** Every object an upload may have left for an image that will not become ready. */
export async function deleteUploadedBytes(
  store: ObjectStore,
  image: ImageRecord,
  signal?: AbortSignal,
): Promise<void> {
  await store.delete(uploadKey(image.id), signal);
  await store.delete(image.objectKey, signal);
}
