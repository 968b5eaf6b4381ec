import { ImgupError, throwIfAborted } from "./errors.ts";
import type { UploadProtocol } from "./protocol.ts";
import { isTransient, withRetries } from "./retry.ts";
import type { Transfer } from "./transfer.ts";
import type { CompletedPart, MultipartUpload, SignedPart } from "./wire.ts";

export interface MultipartContext {
  protocol: UploadProtocol;
  transfer: Transfer;
  imageId: string;
  concurrency: number;
  retries: number;
  signal: AbortSignal;
  onProgress: (loaded: number) => void;
  /** The intent was a replay (same Idempotency-Key): ask the storage which parts it has already. */
  resume: boolean;
}

/** The storage refused a part URL (403): usually it lapsed; the next attempt signs a fresh one. */
const isRefusedUrl = (err: unknown) => err instanceof ImgupError && err.status === 403;

/**
 * Uploads the parts imgup planned (its partSize and partCount), `concurrency` at a time, each
 * retried on its own with backoff, every part a Blob slice (never the file in memory). Part URLs
 * beyond the first hundred, and fresh ones for lapsed URLs, come from GET /v1/uploads/{id}/parts.
 * Resolves with every part's ETag in order, ready for completion.
 */
export async function sendMultipart(
  file: Blob,
  upload: MultipartUpload,
  ctx: MultipartContext,
): Promise<CompletedPart[]> {
  throwIfAborted(ctx.signal);
  const { partSize, partCount } = upload;
  if (Math.max(1, Math.ceil(file.size / partSize)) !== partCount) {
    throw new ImgupError(
      0,
      "part_plan_mismatch",
      `${partCount} parts of ${partSize} bytes do not fit ${file.size}`,
    );
  }
  const sizeOf = (n: number) => Math.min(partSize, file.size - (n - 1) * partSize);
  const urls = new Map<number, string>();
  const addUrls = (parts: SignedPart[]) => {
    for (const p of parts) urls.set(p.partNumber, p.url);
  };
  addUrls(upload.parts);

  const done = new Map<number, string>();
  let doneBytes = 0;
  const inflight = new Map<number, number>();
  const report = () => {
    let loaded = doneBytes;
    for (const bytes of inflight.values()) loaded += bytes;
    ctx.onProgress(loaded);
  };
  const markDone = (n: number, etag: string) => {
    done.set(n, etag);
    doneBytes += sizeOf(n);
  };

  // Aborts the sibling parts when one fails for good, and follows the caller's signal.
  const local = new AbortController();
  const follow = () => local.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", follow, { once: true });

  let refreshing: Promise<void> | null = null;
  const refresh = () => {
    refreshing ??= ctx.protocol
      .parts(ctx.imageId, local.signal)
      .then((status) => addUrls(status.pending))
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
  const urlFor = async (n: number) => {
    if (!urls.has(n)) await refresh();
    const url = urls.get(n);
    if (!url) throw new ImgupError(0, "no_part_url", `imgup signed no URL for part ${n}`);
    return url;
  };

  const sendPart = async (n: number) => {
    const body = file.slice((n - 1) * partSize, (n - 1) * partSize + sizeOf(n));
    await withRetries(
      async () => {
        const url = await urlFor(n);
        inflight.set(n, 0);
        try {
          const result = await ctx.transfer({
            method: "PUT",
            url,
            headers: {},
            body,
            signal: local.signal,
            onProgress: (loaded) => {
              inflight.set(n, loaded);
              report();
            },
          });
          if (!result.etag) {
            throw new ImgupError(
              0,
              "missing_etag",
              "the storage's answer has no readable ETag (CORS must expose ETag)",
            );
          }
          // Counted done before it stops counting as in flight: progress never dips.
          markDone(n, result.etag);
        } catch (err) {
          if (isRefusedUrl(err) && urls.get(n) === url) urls.delete(n);
          throw err;
        } finally {
          inflight.delete(n);
          report();
        }
      },
      {
        retries: ctx.retries,
        signal: local.signal,
        retryable: (err) => isTransient(err) || isRefusedUrl(err),
      },
    );
  };

  try {
    if (ctx.resume) {
      const status = await ctx.protocol.parts(ctx.imageId, local.signal);
      // A part of the wrong size (another plan, a torn write) is sent again.
      for (const p of status.uploaded) if (p.size === sizeOf(p.partNumber)) markDone(p.partNumber, p.etag);
      addUrls(status.pending);
      report();
    }
    const queue: number[] = [];
    for (let n = 1; n <= partCount; n++) if (!done.has(n)) queue.push(n);
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await sendPart(n);
    };
    const workers = Array.from({ length: Math.min(ctx.concurrency, queue.length) }, worker);
    try {
      await Promise.all(workers);
    } catch (err) {
      local.abort(err);
      await Promise.allSettled(workers);
      throw err;
    }
  } finally {
    ctx.signal.removeEventListener("abort", follow);
  }
  return [...done.entries()].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
}
