/** Public types of the imgup client SDK. Runs in browsers and in Node >= 20: no Node-only APIs. */
import type { AbortSignalLike, BlobLike, FetchLike } from "./platform.ts";

export type Visibility = "public" | "private";
export type ImageStatus =
  | "pending"
  | "processing"
  | "ready"
  | "rejected"
  | "expired"
  | "deleted"
  /** Awaiting a moderation decision (docs/moderation.md): served to its owner's signed URLs only. */
  | "held";
/** Why processing refused an upload (stable codes; rejectDetail says more in words). */
export type RejectReason =
  | "not_an_image"
  | "unsupported_format"
  | "type_mismatch"
  | "too_many_pixels"
  | "too_large"
  | "hash_mismatch"
  | "corrupt"
  | "too_complex"
  | "timeout"
  | "dimensions_exceeded"
  | "malware";

/** An image as the API returns it (the server's ImageViewSchema). */
export interface ImageView {
  id: string;
  status: ImageStatus;
  visibility: Visibility;
  filename: string;
  contentType: string | null;
  size: number | null;
  width: number | null;
  height: number | null;
  format: string | null;
  sha256: string | null;
  /** ThumbHash, base64. */
  placeholder: string | null;
  rejectReason: RejectReason | null;
  rejectDetail: string | null;
  createdAt: string;
  readyAt: string | null;
  /** true: deleted at claimExpiresAt unless claimed (client.claim) by then. */
  claimRequired: boolean;
  claimed: boolean;
  claimExpiresAt: string | null;
  /** The app's reference given with the claim (e.g. "users/42/avatar"). */
  ref: string | null;
  /** The upload profile the upload named. */
  profile: string | null;
  /**
   * Only for ready images; a private image's URLs carry an expiring signature. `original` is what
   * anyone may fetch (for a public image: without EXIF/GPS/XMP); `source` is the untouched upload,
   * always signed and expiring.
   */
  urls: { original: string; source: string; presets: Record<string, string> } | null;
}

export interface ImgupClientOptions {
  /** "" = same origin in a browser. */
  baseUrl: string;
  /** API key or JWT, sent as Bearer; a function is asked before every request (token refresh). */
  token: string | (() => string | Promise<string>);
  fetch?: FetchLike["fetch"] | undefined;
  /** Default 32 MiB: larger files use method "multipart". */
  multipartThresholdBytes?: number | undefined;
  /** Parts uploaded at once, default 4. */
  partConcurrency?: number | undefined;
  /** Retries per request (intent, each part, complete), default 4, exponential backoff with jitter. */
  retries?: number | undefined;
  /** How often to look while waiting for ready, default 400 ms. */
  pollIntervalMs?: number | undefined;
  /** Default 5 minutes. */
  readyTimeoutMs?: number | undefined;
}

export interface UploadProgress {
  phase: "hashing" | "uploading" | "processing";
  loaded: number;
  total: number;
}

export interface UploadOptions {
  visibility?: Visibility | undefined;
  onProgress?: ((p: UploadProgress) => void) | undefined;
  signal?: AbortSignalLike | undefined;
  /** Default: the File's name, else "upload". */
  filename?: string | undefined;
  /** Default: the Blob's type (required one way or the other). */
  contentType?: string | undefined;
  /** Default: "multipart" above multipartThresholdBytes, else "put". */
  method?: "put" | "post" | "multipart" | undefined;
  /** Default: a random key per upload() call, reused across its retries. Reuse one to resume. */
  idempotencyKey?: string | undefined;
  /**
   * Default true: the file is hashed first and, when this owner already has the same bytes, the
   * existing image is returned (`deduplicated: true`, its id, its filename) and nothing is sent.
   * `false` skips the hash and always makes a new image with its own id.
   */
  dedup?: boolean | undefined;
  /** true: imgup deletes the image unless claimed (client.claim) within the claim TTL. */
  claim?: boolean | undefined;
  /** An upload profile configured on the server (e.g. "avatar"): its limits and rules apply. */
  profile?: string | undefined;
}

export interface ClaimOptions {
  /** The app's reference for the record the image belongs to, e.g. "users/42/avatar". */
  ref?: string | undefined;
  /** Delete the other images holding `ref` (a changed profile picture). */
  replace?: boolean | undefined;
}

/** What upload() resolves to. */
export interface UploadResult {
  image: ImageView;
  /**
   * True when imgup returned an image it already had for these bytes: the same id as that
   * earlier upload, so deleting either deletes "both". Pass `dedup: false` to keep them apart.
   */
  deduplicated: boolean;
}

export interface ImagePage {
  items: ImageView[];
  nextCursor: string | null;
}

export interface ImgupClient {
  /** Hashes (unless `dedup: false`), uploads straight to the storage, resolves once the image is ready. */
  upload(file: BlobLike, opts?: UploadOptions): Promise<UploadResult>;
  getImage(id: string): Promise<ImageView>;
  listImages(opts?: {
    limit?: number | undefined;
    cursor?: string | undefined;
    /** Only images claimed with exactly this reference. */
    ref?: string | undefined;
  }): Promise<ImagePage>;
  /** Keeps an upload that required a claim, under the app's reference; idempotent. */
  claim(id: string, opts?: ClaimOptions): Promise<ImageView>;
  deleteImage(id: string): Promise<void>;
  setVisibility(id: string, visibility: Visibility): Promise<ImageView>;
  /**
   * "original" (default), a preset name from image.urls.presets, or a transform spec such as
   * "w_400,h_300,fit_cover" (signed by the server). Private images get freshly signed URLs.
   */
  url(image: ImageView, presetOrSpec?: string): Promise<string>;
}
