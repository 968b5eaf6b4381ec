import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { ERRORS } from "../domain/errors.ts";
import { validateKey } from "./local-files.ts";
import { checkContentType } from "./local-presign.ts";
import type {
  BucketCorsRule,
  ByteRange,
  ListPage,
  ObjectHead,
  ObjectStore,
  PresignedRequest,
  PresignPartInput,
  PresignPostInput,
  PresignPutInput,
  PutOptions,
  RangeRead,
  UploadedPart,
} from "./object-store.ts";
import { sha256FromChecksum } from "./s3-body.ts";
import { createS3Client, type S3ConnectionOptions } from "./s3-client.ts";
import { isNotFound, isWriteConflict, mapMultipartError } from "./s3-errors.ts";
import { presignGetUrl, S3Presigner } from "./s3-presign.ts";
import { getBucketCorsRules, getObjectRange, type HeadFields } from "./s3-reads.ts";
import { MAX_SINGLE_PUT_BYTES, writeObject } from "./s3-write.ts";

export interface S3ObjectStoreOptions extends S3ConnectionOptions {
  bucket: string;
  /** Endpoint put into URLs handed to clients when they reach the storage elsewhere than we do. */
  presignEndpoint?: string;
  /** Largest object a client may upload through a presigned URL. */
  maxObjectBytes: number;
  /**
   * Every key of this deployment lives under it (`team-a/` + `{p}/{id}/…`): callers see keys without
   * it, listings never leave it, so deployments sharing a bucket never see each other's objects.
   */
  keyPrefix?: string;
}

const LIST_LIMIT = 1000;

/**
 * ObjectStore on an S3-compatible service (AWS S3, MinIO, Ceph RGW, R2). The storage itself
 * enforces what the presigned requests pin; objects created by clients are announced by the
 * storage's own event notifications, not by this driver.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = "s3" as const;
  private readonly client: S3Client;
  private readonly presigner: S3Presigner;
  private readonly bucket: string;
  private readonly maxObjectBytes: number;
  private readonly prefix: string;

  constructor(opts: S3ObjectStoreOptions) {
    if (!opts.bucket) throw new Error("S3ObjectStore: bucket is required");
    if (!Number.isSafeInteger(opts.maxObjectBytes) || opts.maxObjectBytes < 0) {
      throw new Error("S3ObjectStore: maxObjectBytes must be a non-negative integer");
    }
    this.bucket = opts.bucket;
    this.maxObjectBytes = opts.maxObjectBytes;
    this.prefix = normalizeKeyPrefix(opts.keyPrefix ?? "");
    this.client = createS3Client(opts);
    // Signs with the public endpoint: the Host header is part of the signature.
    const signer =
      opts.presignEndpoint && opts.presignEndpoint !== opts.endpoint
        ? createS3Client(opts, opts.presignEndpoint)
        : this.client;
    this.presigner = new S3Presigner(signer, opts.bucket, opts.maxObjectBytes);
  }

  /** The storage's own key of one of ours. */
  private full(key: string): string {
    return this.prefix + key;
  }

  /** Ours again, from a key the storage names (a listing, an event); null when outside the prefix. */
  logicalKey(storageKey: string): string | null {
    if (!storageKey.startsWith(this.prefix)) return null;
    return storageKey.slice(this.prefix.length);
  }

  async presignPut(input: PresignPutInput): Promise<PresignedRequest> {
    validateKey(input.key);
    return this.presigner.put({ ...input, key: this.full(input.key) });
  }

  async presignPost(input: PresignPostInput): Promise<PresignedRequest> {
    validateKey(input.key);
    return this.presigner.post({ ...input, key: this.full(input.key) });
  }

  /** A URL that GETs the object straight from the bucket until it expires (delivery redirects). */
  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return presignGetUrl(this.presigner.client, this.bucket, this.full(key), expiresInSeconds);
  }

  async presignUploadPart(input: PresignPartInput): Promise<string> {
    validateKey(input.key);
    return this.presigner.part({ ...input, key: this.full(input.key) });
  }

  async createMultipartUpload(
    key: string,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ uploadId: string }> {
    validateKey(key);
    checkContentType(contentType);
    const out = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        ContentType: contentType,
      }),
      via(signal),
    );
    if (!out.UploadId) throw new Error("S3 CreateMultipartUpload returned no UploadId");
    return { uploadId: out.UploadId };
  }

  async listParts(key: string, uploadId: string, signal?: AbortSignal): Promise<UploadedPart[]> {
    validateKey(key);
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    try {
      for (;;) {
        const page = await this.client.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            UploadId: uploadId,
            ...(marker ? { PartNumberMarker: marker } : {}),
          }),
          via(signal),
        );
        for (const p of page.Parts ?? []) {
          parts.push({ partNumber: p.PartNumber ?? 0, etag: p.ETag ?? "", size: p.Size ?? 0 });
        }
        if (!page.IsTruncated || !page.NextPartNumberMarker) break;
        marker = page.NextPartNumberMarker;
      }
    } catch (err) {
      throw mapMultipartError(err);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal,
  ): Promise<ObjectHead> {
    validateKey(key);
    if (parts.length === 0) throw ERRORS.validation("At least one part is required");
    // Part URLs cannot pin a size, so the limit on client uploads is enforced here, before the
    // object exists; the upload stays for the caller to abort.
    const sizes = new Map((await this.listParts(key, uploadId, signal)).map((p) => [p.partNumber, p.size]));
    const total = parts.reduce((sum, p) => sum + (sizes.get(p.partNumber) ?? 0), 0);
    if (total > this.maxObjectBytes) throw ERRORS.entityTooLarge();
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
        via(signal),
      );
    } catch (err) {
      throw mapMultipartError(err);
    }
    // CompleteMultipartUpload answers with the ETag only; size and type come from a HEAD.
    const head = await this.head(key, signal);
    if (!head) throw new Error(`S3: ${key} is missing right after CompleteMultipartUpload`);
    return head;
  }

  async abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    validateKey(key);
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.full(key), UploadId: uploadId }),
        via(signal),
      );
    } catch (err) {
      throw mapMultipartError(err);
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectHead | null> {
    validateKey(key);
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key), ChecksumMode: "ENABLED" }),
        via(signal),
      );
      return toHead(key, out);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async getStream(key: string, signal?: AbortSignal): Promise<{ head: ObjectHead; body: Readable } | null> {
    validateKey(key);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key), ChecksumMode: "ENABLED" }),
        via(signal),
      );
      // In Node the SDK's body is the http.IncomingMessage itself.
      if (!(out.Body instanceof Readable)) throw new Error("S3 GetObject returned no stream body");
      return { head: toHead(key, out), body: out.Body };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async getRange(key: string, range: ByteRange, signal?: AbortSignal): Promise<RangeRead | null> {
    validateKey(key);
    return getObjectRange(this.client, this.bucket, this.full(key), range, (out) => toHead(key, out), signal);
  }

  async corsRules(signal?: AbortSignal): Promise<BucketCorsRule[] | null> {
    return getBucketCorsRules(this.client, this.bucket, signal);
  }

  async copyIfMatch(from: string, to: string, ifMatch: string, signal?: AbortSignal): Promise<boolean> {
    validateKey(from);
    validateKey(to);
    const source = this.full(from).split("/").map(encodeURIComponent).join("/");
    const command = new CopyObjectCommand({
      Bucket: this.bucket,
      Key: this.full(to),
      CopySource: `${this.bucket}/${source}`,
      CopySourceIfMatch: ifMatch,
      MetadataDirective: "COPY",
    });
    // Ceph RGW reads the condition only under its own older name and ignores AWS's (measured): both go.
    command.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers["x-amz-copy-if-match"] = ifMatch;
        return next(args);
      },
      { step: "build", name: "cephCopyIfMatch" },
    );
    try {
      // One request up to 5 GiB (S3's CopyObject limit); uploads are capped far below it.
      await this.client.send(command, via(signal));
      return true;
    } catch (err) {
      if (isNotFound(err) || isWriteConflict(err)) return false;
      throw err;
    }
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<ObjectHead> {
    validateKey(key);
    checkContentType(opts.contentType);
    const declared = Buffer.isBuffer(body) ? body.length : opts.contentLength;
    if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
      throw ERRORS.validation("contentLength must be a non-negative integer");
    }
    // Server-side writes are bounded like an S3 single PUT, not by the client upload limit.
    if (declared !== undefined && declared > MAX_SINGLE_PUT_BYTES) throw ERRORS.entityTooLarge();
    const params = {
      Bucket: this.bucket,
      Key: this.full(key),
      ContentType: opts.contentType,
      ...(opts.cacheControl ? { CacheControl: opts.cacheControl } : {}),
      ...(opts.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
    };
    try {
      await writeObject(this.client, params, body, declared, opts.signal);
    } catch (err) {
      if (opts.ifNoneMatch && isWriteConflict(err)) throw ERRORS.objectExists();
      throw err;
    }
    const head = await this.head(key, opts.signal);
    if (!head) throw new Error(`S3: ${key} is missing right after PutObject`);
    return head;
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    validateKey(key);
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      via(signal),
    );
  }

  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    let deleted = 0;
    // Pages are collected first: deleting while listing with a continuation token can skip keys.
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          ...(token ? { ContinuationToken: token } : {}),
        }),
        via(signal),
      );
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
        via(signal),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(`S3 DeleteObjects failed for ${failed.length} keys (${first?.Key}: ${first?.Code})`);
      }
      deleted += batch.length;
    }
    return deleted;
  }

  async list(
    prefix: string,
    opts: { cursor?: string; limit?: number; signal?: AbortSignal } = {},
  ): Promise<ListPage> {
    const limit = Math.min(Math.max(Math.floor(opts.limit ?? LIST_LIMIT), 1), LIST_LIMIT);
    const page = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: this.full(prefix),
        MaxKeys: limit,
        ...(opts.cursor ? { StartAfter: this.full(opts.cursor) } : {}),
      }),
      via(opts.signal),
    );
    const objects = (page.Contents ?? []).map((o) => ({
      key: this.logicalKey(o.Key ?? "") ?? "",
      size: o.Size ?? 0,
      lastModified: o.LastModified ?? new Date(0),
    }));
    const last = objects.at(-1)?.key;
    return page.IsTruncated && last ? { objects, nextCursor: last } : { objects };
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), via(signal));
  }

  async close(): Promise<void> {
    this.client.destroy();
    if (this.presigner.client !== this.client) this.presigner.client.destroy();
  }
}

const via = (signal?: AbortSignal) => (signal ? { abortSignal: signal } : {});

/** "" or segments of [A-Za-z0-9._-] ending in "/": it must never make a key look like another layout. */
export function normalizeKeyPrefix(raw: string): string {
  const trimmed = raw.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  if (
    !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(trimmed) ||
    trimmed.split("/").some((s) => /^\.+$/.test(s))
  ) {
    throw new Error(`S3 key prefix "${raw}": use letters, digits, . _ - and / between segments`);
  }
  return `${trimmed}/`;
}

function toHead(key: string, out: HeadFields): ObjectHead {
  return {
    key,
    size: out.ContentLength ?? 0,
    contentType: out.ContentType ?? null,
    etag: out.ETag ?? null,
    lastModified: out.LastModified ?? new Date(0),
    sha256: sha256FromChecksum(out.ChecksumSHA256, out.ChecksumType),
  };
}
