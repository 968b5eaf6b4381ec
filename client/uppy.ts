import { internalsOf } from "./client.ts";
import { ImgupError } from "./errors.ts";
import { type AbortSignalLike, asSignal } from "./platform.ts";
import { sendableHeaders } from "./single-upload.ts";
import type { ImageView, ImgupClient, Visibility } from "./types.ts";
import { type SignRequest, signRequestFor } from "./uppy-sign-request.ts";
import { type UppyFileLike, UppyUploads } from "./uppy-uploads.ts";

export type { UppyFileLike } from "./uppy-uploads.ts";

/** @uppy/aws-s3's part record. */
export interface AwsS3Part {
  PartNumber?: number;
  Size?: number;
  ETag?: string;
}

type Signal = { signal?: AbortSignalLike | null | undefined };
type PartRef = Signal & { uploadId: string; key: string };

export interface ImgupUppyOptions {
  shouldUseMultipart(file: UppyFileLike): boolean;
  getChunkSize(file: { size?: number | null }): number;
  /** @uppy/aws-s3 >= 6: names the file until imgup names the image (S3 requests carry only a key). */
  generateObjectKey(file: UppyFileLike): string;
  /** @uppy/aws-s3 >= 6: one signer for every S3 request. */
  signRequest: SignRequest;
  /** @uppy/aws-s3 <= 5 takes these six. */
  getUploadParameters(
    file: UppyFileLike,
    opts?: Signal,
  ): Promise<{
    method: "PUT" | "POST";
    url: string;
    headers?: Record<string, string>;
    fields?: Record<string, string>;
  }>;
  createMultipartUpload(file: UppyFileLike, opts?: Signal): Promise<{ uploadId: string; key: string }>;
  signPart(file: UppyFileLike, opts: PartRef & { partNumber: number }): Promise<{ url: string }>;
  listParts(file: UppyFileLike, opts: PartRef): Promise<AwsS3Part[]>;
  completeMultipartUpload(
    file: UppyFileLike,
    opts: PartRef & { parts: AwsS3Part[] },
  ): Promise<{ location: string }>;
  abortMultipartUpload(file: UppyFileLike, opts: PartRef): Promise<void>;
  /** The imgup image id of an Uppy file once its upload started (also Uppy's `key` of a PUT or multipart upload). */
  imageIdOf(file: { id: string }): string | undefined;
  /**
   * Call on Uppy's `upload-success`: tells imgup a PUT/POST finished (processing starts without
   * waiting for the storage event) and resolves when the image is ready (UploadRejectedError if not).
   */
  waitForReady(file: { id: string }, opts?: { signal?: AbortSignalLike | undefined }): Promise<ImageView>;
}

export interface UppyAdapterOptions {
  visibility?: Visibility | undefined;
  /** Non-multipart uploads: a presigned PUT (default) or a browser-form POST. */
  method?: "put" | "post" | undefined;
  /** Uppy's chunk size for multipart uploads (at least 5 MiB), default 8 MiB; imgup signs parts of it. */
  partSizeBytes?: number | undefined;
}

const MiB = 1024 * 1024;
const MIN_PART_BYTES = 5 * MiB;
const MAX_PARTS = 10_000;

/**
 * Options for @uppy/aws-s3 so that Uppy uploads to imgup, straight to the storage:
 * `uppy.use(AwsS3, uppyAwsS3Options(client))`. Carries the six functions @uppy/aws-s3 v5 takes
 * and the `signRequest` v6 takes (see uppy-sign-request.ts for how v6's S3 calls map to imgup).
 * Uppy uploads without hashing first, so there is no dedup on this path.
 */
export function uppyAwsS3Options(client: ImgupClient, opts: UppyAdapterOptions = {}): ImgupUppyOptions {
  const { protocol, settings, wait } = internalsOf(client);
  const uploads = new UppyUploads(protocol, opts.visibility);
  const partSize = Math.max(MIN_PART_BYTES, opts.partSizeBytes ?? 8 * MiB);
  const chunkSize = (size: number) => Math.max(partSize, Math.ceil(size / MAX_PARTS));
  const files = new Map<string, UppyFileLike>();
  const keyPrefix = "imgup-file/";

  const single = async (file: UppyFileLike) => {
    const upload = await uploads.start(file, opts.method ?? "put");
    const { imageId } = upload;
    if (upload.method === "post") {
      return {
        imageId,
        params: { method: "POST" as const, url: upload.url, fields: upload.fields, headers: {} },
      };
    }
    if (upload.method !== "put")
      throw new ImgupError(0, "unexpected_upload", `imgup answered ${upload.method}`);
    return {
      imageId,
      params: { method: "PUT" as const, url: upload.url, headers: sendableHeaders(upload.headers) },
    };
  };

  const options: ImgupUppyOptions = {
    shouldUseMultipart: (file) => UppyUploads.sizeOf(file) > settings.multipartThresholdBytes,
    getChunkSize: (file) => chunkSize(file.size ?? 0),
    generateObjectKey(file) {
      // What the intent needs, not the file: holding its Blob would keep it from being collected.
      const type = file.type || (file.data && "type" in file.data ? file.data.type : "");
      files.set(file.id, { id: file.id, name: file.name ?? null, type, size: UppyUploads.sizeOf(file) });
      return `${keyPrefix}${file.id}`;
    },
    signRequest: (request) => sign(request),

    getUploadParameters: async (file) => (await single(file)).params,

    async createMultipartUpload(file) {
      const size = UppyUploads.sizeOf(file);
      // Uppy has cut its chunks already: imgup signs parts of exactly that size.
      const upload = await uploads.start(file, "multipart", chunkSize(size));
      if (upload.method !== "multipart")
        throw new ImgupError(0, "unexpected_upload", `imgup answered ${upload.method}`);
      if (upload.partSize !== chunkSize(size)) {
        await uploads.abort(upload.imageId);
        throw new ImgupError(
          0,
          "part_size_mismatch",
          `imgup planned parts of ${upload.partSize} bytes, Uppy cuts ${chunkSize(size)}`,
        );
      }
      return { uploadId: upload.uploadId, key: upload.imageId };
    },

    signPart: async (_file, { key, partNumber, signal }) => ({
      url: await uploads.partUrl(key, partNumber, asSignal(signal)),
    }),

    async listParts(_file, { key, signal }) {
      const status = await uploads.parts(key, asSignal(signal));
      return status.uploaded.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size }));
    },

    async completeMultipartUpload(_file, { key, parts, signal }) {
      const completed = parts.map((p) => ({ partNumber: Number(p.PartNumber), etag: String(p.ETag) }));
      await uploads.complete(key, completed, asSignal(signal));
      return { location: uploads.location(key) };
    },

    abortMultipartUpload: (_file, { key }) => uploads.abort(key),
    imageIdOf: (file) => uploads.imageIdOf(file.id),
    waitForReady: (file, waitOpts = {}) => uploads.waitForReady(file.id, wait(asSignal(waitOpts.signal))),
  };

  const sign = signRequestFor({
    fileOf(key) {
      const file = key.startsWith(keyPrefix) ? files.get(key.slice(keyPrefix.length)) : undefined;
      if (!file)
        throw new TypeError(
          `unknown key ${key}: give @uppy/aws-s3 the generateObjectKey of uppyAwsS3Options`,
        );
      return file;
    },
    single: async (file) => {
      const { imageId, params } = await single(file);
      return { ...params, key: imageId };
    },
    createMultipart: (file) => options.createMultipartUpload(file),
    partUrl: (imageId, partNumber) => uploads.partUrl(imageId, partNumber),
    uploadedParts: (imageId) => uploads.partsIfPending(imageId),
    complete: (imageId, parts) => uploads.complete(imageId, parts),
    abort: (imageId) => uploads.abort(imageId),
    location: (imageId) => uploads.location(imageId),
  });
  return options;
}
