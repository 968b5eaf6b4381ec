import { ImgupError, throwIfAborted, UploadRejectedError } from "./errors.ts";
import { type Api, isImgupError, seg } from "./http.ts";
import { sleep } from "./retry.ts";
import type { ImageView } from "./types.ts";
import type { CompletedPart, IntentRequest, IntentResult, PartsStatus, UploadInstructions } from "./wire.ts";

export interface WaitOptions {
  pollIntervalMs: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** imgup's upload endpoints, one method each (docs/api.md "Uploads"). */
export class UploadProtocol {
  readonly api: Api;

  constructor(api: Api) {
    this.api = api;
  }

  /**
   * POST /v1/uploads. Never cancelled half-way: an intent the server made but whose answer we
   * dropped would stay pending; callers check their signal afterwards and abort what they got.
   */
  async createIntent(body: IntentRequest, idempotencyKey: string): Promise<IntentResult> {
    const res = await this.api.request<{
      image: ImageView;
      upload?: UploadInstructions | undefined;
      deduplicated?: boolean | undefined;
    }>("POST", "/v1/uploads", { body, idempotencyKey });
    const { image, upload } = res.body;
    if (!upload) return { kind: "done", image, deduplicated: res.body.deduplicated === true };
    const replayed = res.headers.get("idempotent-replayed") === "true";
    return { kind: "upload", image, upload, replayed };
  }

  /** GET /v1/uploads/{id}/parts: what the storage has, and fresh URLs for the next missing parts. */
  async parts(imageId: string, signal?: AbortSignal): Promise<PartsStatus> {
    return (await this.api.request<PartsStatus>("GET", `/v1/uploads/${seg(imageId)}/parts`, { signal })).body;
  }

  /** POST /v1/uploads/{id}/complete with the parts: assembles the object and queues processing. */
  async completeMultipart(
    imageId: string,
    parts: CompletedPart[],
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<ImageView> {
    const res = await this.api.request<{ image: ImageView }>("POST", `/v1/uploads/${seg(imageId)}/complete`, {
      body: { parts },
      idempotencyKey,
      signal,
    });
    return res.body.image;
  }

  /**
   * The completion hint after a PUT or POST: processing starts now instead of when the storage
   * event arrives. Only a hint, so a failure changes nothing (the event still comes).
   */
  async hint(imageId: string): Promise<ImageView | null> {
    try {
      const res = await this.api.request<{ image: ImageView }>(
        "POST",
        `/v1/uploads/${seg(imageId)}/complete`,
      );
      return res.body.image;
    } catch (err) {
      if (err instanceof ImgupError) return null;
      throw err;
    }
  }

  /** DELETE /v1/uploads/{id}: nothing stays pending. An upload that already finished is left alone. */
  async abort(imageId: string): Promise<void> {
    try {
      await this.api.request("DELETE", `/v1/uploads/${seg(imageId)}`, { doneOnRetry: [404] });
    } catch (err) {
      // 409: it finished meanwhile (it is an image now); 404: already gone.
      if (isImgupError(err) && (err.status === 409 || err.status === 404)) return;
      throw err;
    }
  }

  /** Polls the image until it leaves pending/processing; rejected and expired uploads throw. */
  async waitForReady(imageId: string, opts: WaitOptions, seen?: ImageView | null): Promise<ImageView> {
    const deadline = Date.now() + opts.timeoutMs;
    let image = seen ?? null;
    for (;;) {
      throwIfAborted(opts.signal);
      if (image) {
        if (image.status === "ready") return image;
        if (image.status === "rejected") throw new UploadRejectedError(image);
        if (image.status === "expired") {
          throw new ImgupError(410, "upload_expired", "the upload URL lapsed before the bytes arrived");
        }
        if (image.status === "deleted")
          throw new ImgupError(404, "image_not_found", `image ${imageId} was deleted`);
      }
      if (Date.now() >= deadline) {
        throw new ImgupError(
          0,
          "ready_timeout",
          `image ${imageId} was not ready within ${opts.timeoutMs} ms`,
        );
      }
      if (image) await sleep(opts.pollIntervalMs, opts.signal);
      image = await this.getImage(imageId, opts.signal);
    }
  }

  async getImage(imageId: string, signal?: AbortSignal): Promise<ImageView> {
    return (await this.api.request<ImageView>("GET", `/v1/images/${seg(imageId)}`, { signal })).body;
  }
}
