import { ImgupError } from "./errors.ts";
import { isImgupError } from "./http.ts";
import type { BlobLike } from "./platform.ts";
import type { UploadProtocol, WaitOptions } from "./protocol.ts";
import type { ImageView, Visibility } from "./types.ts";
import type { IntentRequest, PartsStatus, UploadedPart, UploadInstructions } from "./wire.ts";

/** The parts of an Uppy file the adapter reads (Uppy's UppyFile fits). */
export interface UppyFileLike {
  id: string;
  name?: string | null;
  type?: string | null;
  size?: number | null;
  /** A local file's Blob (a remote file, which only Companion can upload, has just a size). */
  data?: BlobLike | { size: number | null } | null;
}

interface Tracked {
  imageId: string;
  method: IntentRequest["method"];
  urls: Map<number, string>;
  urlsExpireAt: number;
}

/** Sign again this long before a part URL lapses. */
const URL_MARGIN_MS = 60_000;

/**
 * The imgup side of Uppy uploads: which image each Uppy file became, the part URLs imgup signed
 * for it, and the API calls behind each step. Uppy names a multipart upload by `key`, which is the
 * image id, so this works after a page reload too (Golden Retriever resumes with key and uploadId).
 */
export class UppyUploads {
  private readonly byFile = new Map<string, Tracked>();
  private readonly byImage = new Map<string, Tracked>();

  private readonly protocol: UploadProtocol;
  private readonly visibility: Visibility | undefined;

  constructor(protocol: UploadProtocol, visibility: Visibility | undefined) {
    this.protocol = protocol;
    this.visibility = visibility;
  }

  static sizeOf(file: UppyFileLike): number {
    return file.data?.size ?? file.size ?? 0;
  }

  /** A new intent for the file; an earlier one of the same file (Uppy starting over) is aborted. */
  async start(
    file: UppyFileLike,
    method: IntentRequest["method"],
    partSize?: number,
  ): Promise<UploadInstructions & { imageId: string }> {
    const contentType = file.type || (file.data && "type" in file.data ? file.data.type : "");
    if (!contentType) throw new TypeError(`Uppy file ${file.id} has no type`);
    const body: IntentRequest = {
      filename: file.name || "upload",
      contentType,
      size: UppyUploads.sizeOf(file),
      method,
      ...(partSize ? { partSize } : {}),
      ...(this.visibility ? { visibility: this.visibility } : {}),
    };
    const intent = await this.protocol.createIntent(body, crypto.randomUUID());
    if (intent.kind !== "upload")
      throw new ImgupError(409, "conflict", "imgup expected no upload for this file");
    const previous = this.byFile.get(file.id);
    if (previous) await this.protocol.abort(previous.imageId).catch(() => undefined);
    const upload = intent.upload;
    const tracked: Tracked = {
      imageId: intent.image.id,
      method,
      urls: new Map(upload.method === "multipart" ? upload.parts.map((p) => [p.partNumber, p.url]) : []),
      urlsExpireAt: Date.parse(upload.expiresAt),
    };
    this.byFile.set(file.id, tracked);
    this.byImage.set(tracked.imageId, tracked);
    return { ...upload, imageId: tracked.imageId };
  }

  imageIdOf(fileId: string): string | undefined {
    return this.byFile.get(fileId)?.imageId;
  }

  /** What the storage has, remembering the fresh part URLs that came with it. */
  async parts(imageId: string, signal?: AbortSignal | null): Promise<PartsStatus> {
    const status = await this.protocol.parts(imageId, signal ?? undefined);
    const tracked = this.tracked(imageId);
    for (const p of status.pending) tracked.urls.set(p.partNumber, p.url);
    tracked.urlsExpireAt = Date.parse(status.expiresAt);
    return status;
  }

  /** The uploaded parts, or null once the upload is not pending (an earlier attempt completed it). */
  async partsIfPending(imageId: string): Promise<UploadedPart[] | null> {
    try {
      return (await this.parts(imageId)).uploaded;
    } catch (err) {
      if (isImgupError(err) && err.status === 409) return null;
      throw err;
    }
  }

  async partUrl(imageId: string, partNumber: number, signal?: AbortSignal | null): Promise<string> {
    const tracked = this.tracked(imageId);
    if (!tracked.urls.has(partNumber) || Date.now() > tracked.urlsExpireAt - URL_MARGIN_MS) {
      await this.parts(imageId, signal);
    }
    const url = tracked.urls.get(partNumber);
    if (!url) throw new ImgupError(0, "no_part_url", `imgup signed no URL for part ${partNumber}`);
    return url;
  }

  async complete(
    imageId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal | null,
  ): Promise<void> {
    await this.protocol.completeMultipart(imageId, parts, `uppy/${imageId}/complete`, signal ?? undefined);
    this.byImage.delete(imageId);
  }

  async abort(imageId: string): Promise<void> {
    this.byImage.delete(imageId);
    await this.protocol.abort(imageId);
  }

  /** A PUT/POST gets the completion hint first, so processing need not wait for the storage event. */
  async waitForReady(fileId: string, wait: WaitOptions): Promise<ImageView> {
    const tracked = this.byFile.get(fileId);
    if (!tracked) throw new TypeError(`Uppy file ${fileId} was not uploaded through this adapter`);
    const seen = tracked.method === "multipart" ? null : await this.protocol.hint(tracked.imageId);
    return this.protocol.waitForReady(tracked.imageId, wait, seen);
  }

  location(imageId: string): string {
    return `${this.protocol.api.baseUrl}/v1/images/${encodeURIComponent(imageId)}`;
  }

  private tracked(imageId: string): Tracked {
    let tracked = this.byImage.get(imageId);
    if (!tracked) {
      tracked = { imageId, method: "multipart", urls: new Map(), urlsExpireAt: 0 };
      this.byImage.set(imageId, tracked);
    }
    return tracked;
  }
}
