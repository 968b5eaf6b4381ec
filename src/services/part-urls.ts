import type { ObjectStore } from "../storage/object-store.ts";

export interface SignedPart {
  partNumber: number;
  url: string;
}

export function signParts(
  store: ObjectStore,
  key: string,
  uploadId: string,
  partNumbers: number[],
  expiresInSeconds: number,
): Promise<SignedPart[]> {
  return Promise.all(
    partNumbers.map(async (partNumber) => ({
      partNumber,
      url: await store.presignUploadPart({ key, uploadId, partNumber, expiresInSeconds }),
    })),
  );
}
