import { abortErrorOf, errorFromBody, NetworkError, throwIfAborted } from "./errors.ts";

/** One request that carries file bytes to the storage (a PUT, a part, a form POST). */
export interface TransferRequest {
  method: "PUT" | "POST";
  url: string;
  headers: Record<string, string>;
  body: Blob;
  signal: AbortSignal;
  /** Bytes of `body` sent so far. */
  onProgress: (loaded: number) => void;
}

export interface TransferResult {
  status: number;
  /** The storage's ETag (a part's is needed to complete a multipart upload). */
  etag: string | null;
}

export type Transfer = (req: TransferRequest) => Promise<TransferResult>;

/**
 * Browsers report upload progress only through XMLHttpRequest; fetch cannot stream a request body
 * over HTTP/1.1 there. Without XHR (Node) fetch streams the Blob and counts what it reads. A custom
 * fetch in a browser is honoured: its progress then moves when each request finishes.
 */
export function chooseTransfer(customFetch: typeof fetch | undefined): Transfer {
  const hasXhr = typeof XMLHttpRequest !== "undefined";
  if (hasXhr && !customFetch) return xhrTransfer;
  const fetchFn = customFetch ?? globalThis.fetch.bind(globalThis);
  return (req) => fetchTransfer(fetchFn, req, !hasXhr);
}

/** Errors answer with an ImgupError (status and the storage's or imgup's code). */
export function xhrTransfer(req: TransferRequest): Promise<TransferResult> {
  return new Promise((resolve, reject) => {
    throwIfAborted(req.signal);
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    const done = () => req.signal.removeEventListener("abort", onAbort);
    xhr.open(req.method, req.url, true);
    for (const [name, value] of Object.entries(req.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => req.onProgress(Math.min(event.loaded, req.body.size));
    xhr.onload = () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) {
        req.onProgress(req.body.size);
        resolve({ status: xhr.status, etag: xhr.getResponseHeader("ETag") });
      } else {
        reject(errorFromBody(xhr.status, xhr.getResponseHeader("Content-Type"), xhr.responseText));
      }
    };
    xhr.onerror = () => {
      done();
      reject(new NetworkError(new Error(`network error on ${req.method} to the storage`)));
    };
    xhr.onabort = () => {
      done();
      reject(abortErrorOf(req.signal));
    };
    req.signal.addEventListener("abort", onAbort, { once: true });
    xhr.send(req.body);
  });
}

async function fetchTransfer(
  fetchFn: typeof fetch,
  req: TransferRequest,
  streamBody: boolean,
): Promise<TransferResult> {
  const headers = { ...req.headers };
  let body: Blob | ReadableStream<Uint8Array> = req.body;
  if (streamBody) {
    // A streamed body has no length of its own; the storage needs Content-Length (S3 signs it).
    headers["Content-Length"] = String(req.body.size);
    body = countingStream(req.body, req.onProgress);
  }
  let res: Response;
  try {
    res = await fetchFn(req.url, {
      method: req.method,
      headers,
      body,
      signal: req.signal,
      ...(streamBody ? { duplex: "half" } : {}),
    } as RequestInit);
  } catch (err) {
    if (req.signal.aborted) throw abortErrorOf(req.signal);
    throw new NetworkError(err);
  }
  const text = await res.text();
  if (!res.ok) throw errorFromBody(res.status, res.headers.get("content-type"), text);
  req.onProgress(req.body.size);
  return { status: res.status, etag: res.headers.get("etag") };
}

function countingStream(blob: Blob, onProgress: (loaded: number) => void): ReadableStream<Uint8Array> {
  let loaded = 0;
  return blob.stream().pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        loaded += chunk.byteLength;
        onProgress(loaded);
        controller.enqueue(chunk);
      },
    }),
  );
}
