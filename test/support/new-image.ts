import type { NewImage } from "../../src/db/images-repository.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { originalKey } from "../../src/domain/keys.ts";

/** A pending image's row as an intent would insert it: a JPEG of 1,234 bytes unless told otherwise. */
export function newImageRow(ownerId: string, overrides: Partial<NewImage> = {}): NewImage {
  const id = overrides.id ?? newImageId();
  return {
    id,
    ownerId,
    visibility: "public",
    filename: "a.jpg",
    objectKey: originalKey(id),
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: 1234,
    declaredSha256: null,
    idempotencyKey: null,
    uploadExpiresAt: new Date(Date.now() + 60_000),
    multipartUploadId: null,
    multipartPartSize: null,
    ...overrides,
  };
}
