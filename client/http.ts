import { abortErrorOf, errorFromBody, ImgupError, NetworkError } from "./errors.ts";
import { isTransient, RetryLaterError, withRetries } from "./retry.ts";

export interface ApiOptions {
  baseUrl: string;
  token: string | (() => string | Promise<string>);
  fetch: typeof fetch;
  retries: number;
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  body?: unknown | undefined;
  idempotencyKey?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Default: the client's `retries`. Only for requests that are safe to repeat. */
  retries?: number | undefined;
  /**
   * Statuses that mean "already done" when they answer a retry: the first attempt may have
   * succeeded with its answer lost (a repeated DELETE finds nothing: 404).
   */
  doneOnRetry?: readonly number[] | undefined;
}

const MAX_RETRY_AFTER_MS = 60_000;

/** JSON requests to imgup's API with the bearer token, retries with backoff, problem+json errors. */
export class Api {
  readonly baseUrl: string;
  private readonly opts: ApiOptions;
  /** Whether imgup ever answered: until then a failed fetch is not retried (see NetworkError). */
  private answered = false;

  constructor(opts: ApiOptions) {
    this.opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  }

  async request<T>(method: string, path: string, ro: RequestOptions = {}): Promise<ApiResponse<T>> {
    try {
      return await withRetries((attempt) => this.once<T>(method, path, ro, attempt), {
        retries: ro.retries ?? this.opts.retries,
        signal: ro.signal,
        retryable: (err) => err instanceof RetryLaterError || isTransient(err),
      });
    } catch (err) {
      // The wrapper only carried the wait; callers see the server's error.
      throw err instanceof RetryLaterError ? err.cause : err;
    }
  }

  private async once<T>(method: string, path: string, ro: RequestOptions, attempt: number) {
    const token = typeof this.opts.token === "function" ? await this.opts.token() : this.opts.token;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (ro.body !== undefined) headers["content-type"] = "application/json";
    if (ro.idempotencyKey !== undefined) headers["idempotency-key"] = ro.idempotencyKey;
    let res: Response;
    try {
      res = await this.opts.fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: ro.body === undefined ? null : JSON.stringify(ro.body),
        signal: ro.signal ?? null,
      });
    } catch (err) {
      if (ro.signal?.aborted) throw abortErrorOf(ro.signal);
      const firstContact = !this.answered && err instanceof TypeError;
      throw new NetworkError(err, firstContact ? { url: `${this.baseUrl}${path}` } : undefined);
    }
    this.answered = true;
    const text = await res.text();
    const contentType = res.headers.get("content-type");
    if (res.ok || (attempt > 0 && ro.doneOnRetry?.includes(res.status))) {
      const body = res.ok && text && contentType?.includes("json") ? JSON.parse(text) : undefined;
      return { status: res.status, headers: res.headers, body: body as T };
    }
    const error = errorFromBody(res.status, contentType, text);
    const retryAfter = retryAfterMs(res.headers.get("retry-after"));
    // A request with this Idempotency-Key is still running: its answer will be replayed shortly.
    if (error.code === "idempotency_request_in_progress" || (retryAfter !== null && isTransient(error))) {
      throw new RetryLaterError(error, retryAfter ?? 0);
    }
    throw error;
  }
}

function retryAfterMs(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS) : null;
}

/** Encodes one path segment (ids come from the server, but never trust them into a path). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

export function isImgupError(err: unknown, code?: string): err is ImgupError {
  return err instanceof ImgupError && (code === undefined || err.code === code);
}
