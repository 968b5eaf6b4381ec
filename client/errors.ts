import type { ImageView } from "./types.ts";

/**
 * An error from imgup (its problem+json: status, stable code, detail) or from the storage.
 * `status` is 0 when no HTTP answer decided it (network failure, timeout waiting for ready).
 */
export class ImgupError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;

  constructor(status: number, code: string, detail: string, options?: { cause?: unknown }) {
    super(`${code}: ${detail}`, options);
    this.name = "ImgupError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** The upload reached imgup but the worker refused it; `reason` is the image's rejectReason. */
export class UploadRejectedError extends ImgupError {
  readonly image: ImageView;
  readonly reason: string;

  constructor(image: ImageView) {
    const reason = image.rejectReason ?? "rejected";
    super(422, "upload_rejected", image.rejectDetail ?? `the upload was rejected: ${reason}`);
    this.name = "UploadRejectedError";
    this.image = image;
    this.reason = reason;
  }
}

/**
 * What a failed fetch leaves: no answer at all. Worth another attempt, unless imgup never answered
 * this client yet (`unreachable`): a browser reports a CORS refusal exactly like a dead server, and
 * retrying either only delays the message by seconds.
 */
export class NetworkError extends ImgupError {
  readonly unreachable: boolean;

  constructor(cause: unknown, unreachable?: { url: string }) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      0,
      "network_error",
      unreachable
        ? `no answer from imgup at ${unreachable.url} (${reason}): the server is unreachable or, in a ` +
            "browser, the request was blocked by CORS (is this page's origin in IMGUP_CORS_ORIGINS?)"
        : reason,
      { cause },
    );
    this.name = "NetworkError";
    this.unreachable = unreachable !== undefined;
  }
}

/** Statuses where the same request may well succeed a moment later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** An ImgupError built from an error response: imgup's problem+json, S3's XML, or just the status. */
export function errorFromBody(status: number, contentType: string | null, text: string): ImgupError {
  if (contentType?.includes("json")) {
    try {
      const problem = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown };
      if (typeof problem.code === "string") {
        const detail = typeof problem.detail === "string" ? problem.detail : String(problem.title ?? "");
        return new ImgupError(status, problem.code, detail);
      }
    } catch {
      // not JSON after all: fall through
    }
  }
  const s3Code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
  const s3Message = /<Message>([^<]{0,500})<\/Message>/.exec(text)?.[1];
  if (s3Code) return new ImgupError(status, s3Code, s3Message ?? s3Code);
  return new ImgupError(status, `http_${status}`, text.slice(0, 500) || `HTTP ${status}`);
}

export function isAbortError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === "AbortError";
}

/** The error an aborted operation rejects with: the signal's own reason when it is an AbortError. */
export function abortErrorOf(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && (reason.name === "AbortError" || reason.name === "TimeoutError")) {
    return reason;
  }
  return new DOMException("The operation was aborted", "AbortError");
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortErrorOf(signal);
}
