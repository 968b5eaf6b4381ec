import type { Readable } from "node:stream";

/**
 * The object storage as imgup uses it. Implemented by the local-disk driver (embedded mode) and
 * the S3 driver (AWS S3, MinIO, Ceph RGW, R2). Every method that talks to the backend takes an
 * optional AbortSignal.
 */
export interface ObjectStore {
  readonly kind: "local" | "s3";

  /** A URL the client PUTs the bytes to; Content-Type and Content-Length (and the checksum, if given) are pinned. */
  presignPut(input: PresignPutInput): Promise<PresignedRequest>;
  /** A browser form upload: a policy pinning the key, the Content-Type and a content-length-range. */
  presignPost(input: PresignPostInput): Promise<PresignedRequest>;

  createMultipartUpload(
    key: string,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ uploadId: string }>;
  presignUploadPart(input: PresignPartInput): Promise<string>;
  listParts(key: string, uploadId: string, signal?: AbortSignal): Promise<UploadedPart[]>;
  completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal,
  ): Promise<ObjectHead>;
  abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void>;

  /** null when there is no object at the key. */
  head(key: string, signal?: AbortSignal): Promise<ObjectHead | null>;
  /** null when there is no object at the key. */
  getStream(key: string, signal?: AbortSignal): Promise<{ head: ObjectHead; body: Readable } | null>;
  /**
   * Part of the object (head.size is still the whole object's size); null when there is no object
   * at the key. Throws RangeNotSatisfiableError when the range starts past the end.
   */
  getRange(key: string, range: ByteRange, signal?: AbortSignal): Promise<RangeRead | null>;
  /**
   * The bucket's CORS rules as the storage reports them ([] when it has none); null when there is
   * no bucket a browser talks to (the local driver: imgup itself answers CORS).
   */
  corsRules(signal?: AbortSignal): Promise<BucketCorsRule[] | null>;
  /**
   * Copies, inside the storage, the object at `from` to `to` if `from` still has ETag `ifMatch`
   * (the version that was read and validated). false, with nothing written: `from` is gone or changed.
   */
  copyIfMatch(from: string, to: string, ifMatch: string, signal?: AbortSignal): Promise<boolean>;
  /** Writes an object the server itself produces (variants, proxy uploads). */
  put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<ObjectHead>;
  /** Deleting a missing key is not an error. */
  delete(key: string, signal?: AbortSignal): Promise<void>;
  /** Deletes every object whose key starts with prefix; returns how many. */
  deletePrefix(prefix: string, signal?: AbortSignal): Promise<number>;
  /** Keys in lexicographic order, paged. */
  list(prefix: string, opts?: { cursor?: string; limit?: number; signal?: AbortSignal }): Promise<ListPage>;

  /** One of our keys from a key the storage named (an event); null when it is not this deployment's. */
  logicalKey(storageKey: string): string | null;
  /** Throws when the backend cannot be reached (readiness). */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface PresignPutInput {
  key: string;
  contentType: string;
  contentLength: number;
  /** Lower-case hex SHA-256 the client declared; pinned as x-amz-checksum-sha256 (base64) when given. */
  sha256?: string;
  expiresInSeconds: number;
}

export interface PresignPostInput {
  key: string;
  contentType: string;
  maxBytes: number;
  minBytes?: number;
  expiresInSeconds: number;
}

export interface PresignPartInput {
  key: string;
  uploadId: string;
  partNumber: number;
  /** The part's exact size, signed: every part but the last is the part size, the last the rest. */
  contentLength: number;
  expiresInSeconds: number;
}

export interface PresignedRequest {
  method: "PUT" | "POST";
  url: string;
  /** Headers the client must send exactly as given (PUT). */
  headers: Record<string, string>;
  /** Form fields to send before the file field (POST). */
  fields: Record<string, string>;
  expiresAt: Date;
}

/** A single byte range as HTTP asks for it: first to last (inclusive; open-ended) or the last N bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

export interface RangeRead {
  head: ObjectHead;
  body: Readable;
  /** The bytes served, inclusive. */
  start: number;
  end: number;
}

/** The range asked for lies wholly past the end of the object (HTTP 416). */
export class RangeNotSatisfiableError extends Error {
  constructor(readonly size: number) {
    super(`the range starts past the end of the object (${size} bytes)`);
    this.name = "RangeNotSatisfiableError";
  }
}

/** Resolves a range against an object's size; null when it is not satisfiable. */
export function resolveRange(range: ByteRange, size: number): { start: number; end: number } | null {
  if ("suffix" in range) {
    if (range.suffix <= 0 || size === 0) return null;
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  if (range.start >= size) return null;
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}

/** One CORS rule of a bucket, as S3's GetBucketCors returns it. */
export interface BucketCorsRule {
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface ObjectHead {
  key: string;
  size: number;
  contentType: string | null;
  etag: string | null;
  lastModified: Date;
  /** Lower-case hex SHA-256 when the storage verified one on write. */
  sha256: string | null;
}

export interface PutOptions {
  contentType: string;
  contentLength?: number;
  /** Refuse (ObjectExistsError) instead of overwriting. */
  ifNoneMatch?: boolean;
  cacheControl?: string;
  signal?: AbortSignal;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListPage {
  objects: ListedObject[];
  /** Pass as cursor to get the next page; absent on the last page. */
  nextCursor?: string;
}

/** What a storage says when an object was created; produced by the local driver or parsed from S3 events. */
export interface ObjectCreatedEvent {
  key: string;
  size: number | null;
  etag: string | null;
  source: string;
  /** The bucket the storage named, when it names one (S3-compatible notifications). */
  bucket?: string;
  /** The storage's own name for what happened, normalised to the S3 form, e.g. "ObjectCreated:Put". */
  eventName?: string;
}

export type ObjectCreatedListener = (event: ObjectCreatedEvent) => Promise<void>;
