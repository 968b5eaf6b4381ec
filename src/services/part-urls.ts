import type { ObjectStore } from "../storage/object-store.ts";

export interface SignedPart {
  partNumber: number;
  url: string;
}

/** The exact size of part n of an upload of `total` bytes in parts of `partSize`. */
export function partLength(total: number, partSize: number, partNumber: number): number {
  const partCount = Math.ceil(total / partSize);
  return partNumber < partCount ? partSize : total - (partCount - 1) * partSize;
}

export function signParts(
  store: ObjectStore,
  upload: { key: string; uploadId: string; size: number; partSize: number },
  partNumbers: number[],
  expiresInSeconds: number,
): Promise<SignedPart[]> {
  const { key, uploadId, size, partSize } = upload;
  return Promise.all(
    partNumbers.map(async (partNumber) => ({
      partNumber,
      url: await store.presignUploadPart({
        key,
        uploadId,
        partNumber,
        contentLength: partLength(size, partSize, partNumber),
        expiresInSeconds,
      }),
    })),
  );
}
