import {
  abortErrorOf,
  ImgupError,
  isAbortError,
  isRetryableStatus,
  NetworkError,
  throwIfAborted,
} from "./errors.ts";

const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 10_000;

/** An error that says how long to wait before the next attempt (Retry-After). */
export class RetryLaterError extends ImgupError {
  readonly retryAfterMs: number;

  constructor(cause: ImgupError, retryAfterMs: number) {
    super(cause.status, cause.code, cause.detail, { cause });
    this.name = "RetryLaterError";
    this.retryAfterMs = retryAfterMs;
  }
}

/** Exponential backoff with full jitter; a server's Retry-After is a floor. */
export function backoffDelayMs(attempt: number, retryAfterMs = 0): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return Math.max(retryAfterMs, Math.random() * ceiling);
}

/** Resolves after ms, or rejects with the abort error as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortErrorOf(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortErrorOf(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Network failures and 408/429/5xx answers; never an abort. */
export function isTransient(err: unknown): boolean {
  if (isAbortError(err) || (err instanceof NetworkError && err.unreachable)) return false;
  return err instanceof ImgupError && (err.status === 0 || isRetryableStatus(err.status));
}

export interface RetryOptions {
  retries: number;
  signal?: AbortSignal | undefined;
  /** Default: isTransient. */
  retryable?: ((err: unknown) => boolean) | undefined;
}

/** Runs fn until it succeeds, a non-retryable error, or `retries` extra attempts; waits in between. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const retryable = opts.retryable ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(opts.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.retries || !retryable(err)) throw err;
      const floor = err instanceof RetryLaterError ? err.retryAfterMs : 0;
      await sleep(backoffDelayMs(attempt, floor), opts.signal);
    }
  }
}
