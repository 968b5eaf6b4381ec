import { randomUUID } from "node:crypto";
import type { Stats } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { ERRORS } from "../domain/errors.ts";
import {
  commitObject,
  copyIfMatch,
  DIR_MODE,
  type Dirs,
  dirsOf,
  errnoOf,
  FILE_MODE,
  headOf,
  metaPath,
  objectPath,
  pruneEmptyDirs,
  quoteEtag,
  statFile,
  validateKey,
  writeTemp,
} from "./local-files.ts";
import { receiveForm } from "./local-form-upload.ts";
import { listObjects, walkKeys } from "./local-listing.ts";
import { LocalMultipart } from "./local-multipart.ts";
import { checkContentType, LocalPresigner } from "./local-presign.ts";
import { type HeaderMap, type LocalUploadRequest, receivePut } from "./local-put-upload.ts";
import { SidecarCache } from "./local-sidecar-cache.ts";
import {
  type BucketCorsRule,
  type ByteRange,
  type ListPage,
  type ObjectCreatedListener,
  type ObjectHead,
  type ObjectStore,
  type PresignedRequest,
  type PresignPartInput,
  type PresignPostInput,
  type PresignPutInput,
  type PutOptions,
  RangeNotSatisfiableError,
  type RangeRead,
  resolveRange,
  type UploadedPart,
} from "./object-store.ts";

export interface LocalObjectStoreOptions {
  /** Directory holding everything: objects/, meta/, tmp/, multipart/. */
  root: string;
  /** Origin the upload URLs point at, e.g. http://localhost:8080 (no trailing slash). */
  publicBaseUrl: string;
  /** HMAC key of the upload URLs and form policies. */
  secret: string;
  maxObjectBytes: number;
  onObjectCreated?: ObjectCreatedListener;
  now?: () => number;
}

export type { LocalUploadRequest };

/** A POST of a multipart/form-data body to `/storage-post`. */
export interface LocalPostUploadRequest {
  headers: HeaderMap;
  body: Readable;
}

export interface LocalUploadResponse {
  status: number;
  headers: Record<string, string>;
}

const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

/**
 * Object storage on the local disk for the embedded mode. It enforces what S3 enforces on a
 * presigned upload (signature, expiry, pinned Content-Type/Content-Length/checksum, size limits,
 * multipart rules) and announces every created object like S3 event notifications would, so the
 * rest of imgup cannot tell it from production. Its upload endpoints are handleUpload and
 * handlePostUpload, mounted by the HTTP layer at the URLs this driver signs.
 */
export class LocalObjectStore implements ObjectStore {
  readonly kind = "local" as const;
  private readonly dirs: Dirs;
  private readonly secret: string;
  private readonly maxObjectBytes: number;
  private readonly now: () => number;
  private readonly multipart: LocalMultipart;
  private readonly presigner: LocalPresigner;
  private listener: ObjectCreatedListener | undefined;
  private prepared: Promise<void> | undefined;
  /** Sidecars already parsed, so a hit does not read one again (see SidecarCache). */
  private readonly sidecars: SidecarCache;

  constructor(opts: LocalObjectStoreOptions) {
    if (!opts.secret) throw new Error("LocalObjectStore: secret is required");
    if (!Number.isSafeInteger(opts.maxObjectBytes) || opts.maxObjectBytes < 0) {
      throw new Error("LocalObjectStore: maxObjectBytes must be a non-negative integer");
    }
    this.dirs = dirsOf(opts.root);
    this.sidecars = new SidecarCache((key) => metaPath(this.dirs, key));
    this.secret = opts.secret;
    this.maxObjectBytes = opts.maxObjectBytes;
    this.now = opts.now ?? Date.now;
    this.listener = opts.onObjectCreated;
    this.multipart = new LocalMultipart(this.dirs, opts.maxObjectBytes);
    this.presigner = new LocalPresigner(
      opts.publicBaseUrl.replace(/\/+$/, ""),
      this.secret,
      this.maxObjectBytes,
      this.now,
    );
  }

  /** The composition root wires the listener once the services exist. */
  setObjectCreatedListener(fn: ObjectCreatedListener | undefined): void {
    this.listener = fn;
  }

  async presignPut(input: PresignPutInput): Promise<PresignedRequest> {
    return this.presigner.put(input);
  }

  async presignPost(input: PresignPostInput): Promise<PresignedRequest> {
    return this.presigner.post(input);
  }

  async createMultipartUpload(
    key: string,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ uploadId: string }> {
    validateKey(key);
    checkContentType(contentType);
    await this.ready(signal);
    return { uploadId: await this.multipart.create(key, contentType) };
  }

  async presignUploadPart(input: PresignPartInput): Promise<string> {
    return this.presigner.part(input);
  }

  async listParts(key: string, uploadId: string, signal?: AbortSignal): Promise<UploadedPart[]> {
    validateKey(key);
    await this.ready(signal);
    return this.multipart.list(key, uploadId);
  }

  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal,
  ): Promise<ObjectHead> {
    validateKey(key);
    await this.ready(signal);
    const head = await this.multipart.complete(key, uploadId, parts);
    await this.announce(head);
    return head;
  }

  async abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    validateKey(key);
    await this.ready(signal);
    await this.multipart.abort(key, uploadId);
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectHead | null> {
    validateKey(key);
    signal?.throwIfAborted();
    const data = await statFile(objectPath(this.dirs, key));
    return data ? headOf(key, data, await this.sidecars.get(key, data)) : null;
  }

  async getStream(key: string, signal?: AbortSignal): Promise<{ head: ObjectHead; body: Readable } | null> {
    const read = await this.open(key, signal);
    return read && { head: read.head, body: read.body };
  }

  async getRange(key: string, range: ByteRange, signal?: AbortSignal): Promise<RangeRead | null> {
    return this.open(key, signal, range);
  }

  /** The local driver has no bucket: imgup answers CORS for /storage* itself. */
  async corsRules(): Promise<BucketCorsRule[] | null> {
    return null;
  }

  private async open(key: string, signal?: AbortSignal, range?: ByteRange): Promise<RangeRead | null> {
    validateKey(key);
    signal?.throwIfAborted();
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(objectPath(this.dirs, key), "r");
    } catch (err) {
      if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return null;
      throw err;
    }
    // Head and body come from the same open file, so a concurrent replace cannot mix them.
    let data: Stats;
    try {
      data = await handle.stat();
      if (!data.isFile()) {
        await handle.close();
        return null;
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    const head = headOf(key, data, await this.sidecars.get(key, data));
    const span = range ? resolveRange(range, head.size) : { start: 0, end: head.size - 1 };
    if (!span) {
      await handle.close();
      throw new RangeNotSatisfiableError(head.size);
    }
    // An empty file: createReadStream with end -1 would read it whole, which is nothing anyway.
    const body = handle.createReadStream(head.size === 0 ? {} : { start: span.start, end: span.end });
    return { head, body, ...span };
  }

  async copyIfMatch(from: string, to: string, ifMatch: string, signal?: AbortSignal): Promise<boolean> {
    validateKey(from);
    validateKey(to);
    await this.ready(signal);
    return copyIfMatch(this.dirs, from, to, ifMatch);
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<ObjectHead> {
    validateKey(key);
    checkContentType(opts.contentType);
    await this.ready(opts.signal);
    const declared = opts.contentLength;
    if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
      throw ERRORS.validation("contentLength must be a non-negative integer");
    }
    // Server-side writes (variants, proxy uploads that enforce their own policy) are bounded like an
    // S3 single PUT, not by the client upload limit: a large re-encoded variant must still fit.
    if (declared !== undefined && declared > MAX_SINGLE_PUT_BYTES) throw ERRORS.entityTooLarge();
    if (opts.ifNoneMatch && (await this.exists(key))) throw ERRORS.objectExists();
    const temp = await writeTemp(this.dirs, body, {
      limit: declared ?? MAX_SINGLE_PUT_BYTES,
      overLimit: () =>
        declared === undefined
          ? ERRORS.entityTooLarge()
          : ERRORS.contentLengthMismatch("The body is longer than declared"),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (declared !== undefined && temp.size < declared) {
      await rm(temp.path, { force: true });
      throw ERRORS.incompleteBody();
    }
    const head = await commitObject(this.dirs, key, temp, {
      contentType: opts.contentType,
      etag: quoteEtag(temp.md5),
      sha256: null,
      ...(opts.cacheControl ? { cacheControl: opts.cacheControl } : {}),
      overwrite: !opts.ifNoneMatch,
    });
    await this.announce(head);
    return head;
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    validateKey(key);
    signal?.throwIfAborted();
    const data = objectPath(this.dirs, key);
    const meta = metaPath(this.dirs, key);
    await rm(data, { force: true });
    await rm(meta, { force: true });
    await pruneEmptyDirs(dirname(data), this.dirs.objects);
    await pruneEmptyDirs(dirname(meta), this.dirs.meta);
  }

  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    const keys: string[] = [];
    for await (const key of walkKeys(this.dirs.objects, "", prefix)) keys.push(key);
    let deleted = 0;
    for (const key of keys) {
      signal?.throwIfAborted();
      if (await statFile(objectPath(this.dirs, key))) deleted++;
      await this.delete(key);
    }
    return deleted;
  }

  async list(
    prefix: string,
    opts: { cursor?: string; limit?: number; signal?: AbortSignal } = {},
  ): Promise<ListPage> {
    return listObjects(this.dirs, prefix, opts);
  }

  /** The embedded storage announces its own objects by their keys: nothing to translate. */
  logicalKey(storageKey: string): string | null {
    return storageKey;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.ready(signal);
    const probe = join(this.dirs.tmp, `ping-${randomUUID()}`);
    await writeFile(probe, "", { mode: FILE_MODE });
    await rm(probe, { force: true });
  }

  async close(): Promise<void> {}

  /** PUT of a presigned object or part URL; refuses like S3 would, stores nothing unless every check passes. */
  async handleUpload(req: LocalUploadRequest): Promise<LocalUploadResponse> {
    await this.ready();
    const received = await receivePut({ ...this.uploadDeps(), multipart: this.multipart }, req);
    if (received.kind === "part") return { status: 200, headers: { ETag: received.etag } };
    const { key, temp, contentType, sha256, checksumHeader } = received;
    const etag = quoteEtag(temp.md5);
    const head = await commitObject(this.dirs, key, temp, { contentType, etag, sha256, overwrite: false });
    await this.announce(head);
    const headers: Record<string, string> = { ETag: etag };
    if (checksumHeader !== undefined) headers["x-amz-checksum-sha256"] = checksumHeader;
    return { status: 200, headers };
  }

  /** POST of a browser form built from presignPost; answers 204 like S3's default success_action_status. */
  async handlePostUpload(req: LocalPostUploadRequest): Promise<LocalUploadResponse> {
    await this.ready();
    const form = await receiveForm(this.uploadDeps(), req.headers, req.body);
    const head = await commitObject(this.dirs, form.key, form.temp, {
      contentType: form.contentType,
      etag: quoteEtag(form.temp.md5),
      sha256: null,
      overwrite: false,
    });
    await this.announce(head);
    return { status: 204, headers: { ETag: quoteEtag(form.temp.md5) } };
  }

  /**
   * Awaited before the upload is acknowledged, so an acknowledged object's event is never lost.
   * A failing listener fails the request but the object stays: the reconciler finds it later.
   */
  private async announce(head: ObjectHead): Promise<void> {
    await this.listener?.({ key: head.key, size: head.size, etag: head.etag, source: "local" });
  }

  private uploadDeps() {
    const { dirs, secret, maxObjectBytes, now } = this;
    return { dirs, secret, maxObjectBytes, now, exists: (key: string) => this.exists(key) };
  }

  private async exists(key: string): Promise<boolean> {
    return (await statFile(objectPath(this.dirs, key))) !== null;
  }

  private ready(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.prepared ??= Promise.all(
      [this.dirs.objects, this.dirs.meta, this.dirs.tmp, this.dirs.multipart].map((d) =>
        mkdir(d, { recursive: true, mode: DIR_MODE }),
      ),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.prepared = undefined;
        throw err;
      },
    );
    return this.prepared;
  }
}
