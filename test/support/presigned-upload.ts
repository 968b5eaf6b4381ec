import type { PresignedRequest } from "../../src/storage/object-store.ts";

export interface UploadResult {
  status: number;
  /** Response headers, names lower-case. */
  headers: Record<string, string>;
}

export interface UploadOverrides {
  /** Replace or add request headers (PUT). */
  headers?: Record<string, string>;
}

/**
 * Does what a client does with a presigned request, over real HTTP: a PUT of the body with the
 * given headers, or a multipart/form-data POST with the fields first and the file last. Works
 * against any backend (the local driver's endpoints, S3, MinIO, Ceph RGW).
 */
export async function httpUpload(
  presigned: PresignedRequest,
  body: Buffer,
  overrides: UploadOverrides = {},
): Promise<UploadResult> {
  let response: Response;
  if (presigned.method === "PUT") {
    response = await fetch(presigned.url, {
      method: "PUT",
      headers: { ...presigned.headers, ...overrides.headers },
      body: new Uint8Array(body),
    });
  } else {
    const form = new FormData();
    for (const [name, value] of Object.entries(presigned.fields)) form.append(name, value);
    form.append("file", new Blob([new Uint8Array(body)]), "upload.bin");
    response = await fetch(presigned.url, {
      method: "POST",
      headers: { ...presigned.headers, ...overrides.headers },
      body: form,
    });
  }
  await response.arrayBuffer();
  return { status: response.status, headers: Object.fromEntries(response.headers) };
}
