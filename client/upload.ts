import { abortErrorOf, isAbortError, throwIfAborted } from "./errors.ts";
import { sha256OfBlob } from "./hash.ts";
import { sendMultipart } from "./multipart-upload.ts";
import { asBlob, asSignal, type BlobLike } from "./platform.ts";
import type { UploadProtocol } from "./protocol.ts";
import { sendSingle } from "./single-upload.ts";
import type { Transfer } from "./transfer.ts";
import type { ImageView, UploadOptions, UploadProgress, UploadResult } from "./types.ts";
import type { IntentRequest, UploadInstructions } from "./wire.ts";

export interface UploadSettings {
  multipartThresholdBytes: number;
  partConcurrency: number;
  retries: number;
  pollIntervalMs: number;
  readyTimeoutMs: number;
}

/**
 * upload(): hash (unless dedup is off) → intent (one Idempotency-Key for all its retries) → nothing to send when
 * deduplicated, else the bytes straight to the storage → complete (or the hint) → wait for ready.
 * Cancelling aborts the intent, so nothing stays pending; a failure leaves it for a resume.
 */
export async function runUpload(
  protocol: UploadProtocol,
  transfer: Transfer,
  settings: UploadSettings,
  blob: BlobLike,
  opts: UploadOptions,
): Promise<UploadResult> {
  const file = asBlob(blob);
  const signal = asSignal(opts.signal) ?? new AbortController().signal;
  throwIfAborted(signal);
  const contentType = opts.contentType ?? file.type;
  if (!contentType) throw new TypeError("upload(): the Blob has no type; pass opts.contentType");
  const total = file.size;
  const progress = (phase: UploadProgress["phase"], loaded: number) =>
    opts.onProgress?.({ phase, loaded, total });
  const key = opts.idempotencyKey ?? crypto.randomUUID();

  // Without a sha256 the server has nothing to match: the upload is a new image.
  let sha256: string | undefined;
  if (opts.dedup !== false) {
    progress("hashing", 0);
    sha256 = await sha256OfBlob(file, { signal, onProgress: (n) => progress("hashing", n) });
  }
  const intent: IntentRequest = {
    filename: opts.filename ?? fileNameOf(file),
    contentType,
    size: total,
    ...(sha256 === undefined ? {} : { sha256 }),
    method: opts.method ?? (total > settings.multipartThresholdBytes ? "multipart" : "put"),
    ...(opts.visibility ? { visibility: opts.visibility } : {}),
    ...(opts.claim === undefined ? {} : { claim: opts.claim }),
    ...(opts.profile === undefined ? {} : { profile: opts.profile }),
  };
  const created = await protocol.createIntent(intent, key);
  const wait = { pollIntervalMs: settings.pollIntervalMs, timeoutMs: settings.readyTimeoutMs, signal };
  if (created.kind === "done") {
    progress("processing", total);
    const image = await protocol.waitForReady(created.image.id, wait, created.image);
    return { image, deduplicated: created.deduplicated };
  }
  const imageId = created.image.id;
  let seen: ImageView | null;
  try {
    throwIfAborted(signal);
    progress("uploading", 0);
    seen = await sendAndComplete(protocol, transfer, settings, file, created.upload, {
      imageId,
      key,
      signal,
      resume: created.replayed,
      onProgress: (n) => progress("uploading", n),
    });
  } catch (err) {
    if (signal.aborted || isAbortError(err)) {
      await protocol.abort(imageId);
      throw abortErrorOf(signal);
    }
    throw err;
  }
  progress("processing", total);
  return { image: await protocol.waitForReady(imageId, wait, seen), deduplicated: false };
}

interface SendContext {
  imageId: string;
  key: string;
  signal: AbortSignal;
  resume: boolean;
  onProgress: (loaded: number) => void;
}

/** Sends the bytes as instructed and tells imgup; returns the image as the completion saw it. */
async function sendAndComplete(
  protocol: UploadProtocol,
  transfer: Transfer,
  settings: UploadSettings,
  file: Blob,
  upload: UploadInstructions,
  ctx: SendContext,
): Promise<ImageView | null> {
  const common = { transfer, retries: settings.retries, signal: ctx.signal, onProgress: ctx.onProgress };
  if (upload.method === "multipart") {
    const parts = await sendMultipart(file, upload, {
      ...common,
      protocol,
      imageId: ctx.imageId,
      concurrency: settings.partConcurrency,
      resume: ctx.resume,
    });
    return protocol.completeMultipart(ctx.imageId, parts, `${ctx.key}/complete`, ctx.signal);
  }
  await sendSingle(file, upload, { ...common, mayExist: ctx.resume });
  throwIfAborted(ctx.signal);
  return protocol.hint(ctx.imageId);
}

function fileNameOf(file: Blob): string {
  const name = (file as Partial<File>).name;
  return typeof name === "string" && name.length > 0 ? name : "upload";
}
