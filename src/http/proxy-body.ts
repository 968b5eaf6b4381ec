import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { ERRORS } from "../domain/errors.ts";

/**
 * What is known of a proxy upload's body before any of it is read. Fastify hands this to the
 * route as the "parsed" body, so the Idempotency-Key fingerprint (method, URL with its query,
 * body) covers exactly these headers and a replay never needs the bytes. A form's boundary is
 * left out: clients pick a new one for every attempt.
 */
export interface BodyDescriptor {
  mediaType: string;
  contentLength: number | null;
  filename: string | null;
  sha256: string | null;
}

export function describeBody(headers: IncomingHttpHeaders): BodyDescriptor {
  const length = headers["content-length"];
  return {
    mediaType: (headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "",
    contentLength: length === undefined ? null : Number(length),
    filename: filenameFromHeaders(headers) ?? null,
    sha256: single(headers["x-content-sha256"])?.trim() ?? null,
  };
}

/** `X-Filename` (percent-encoded UTF-8 allowed), else the filename of a `Content-Disposition`. */
export function filenameFromHeaders(headers: IncomingHttpHeaders): string | undefined {
  const given = single(headers["x-filename"]);
  if (given !== undefined) return percentDecoded(given);
  const disposition = single(headers["content-disposition"]);
  return disposition === undefined ? undefined : filenameFromDisposition(disposition);
}

/** RFC 6266: `filename*=UTF-8''…` wins over `filename="…"`. */
export function filenameFromDisposition(value: string): string | undefined {
  const extended = /(?:^|;)\s*filename\*\s*=\s*(?:utf-8|UTF-8)'[^']*'([^;\s]+)/.exec(value);
  if (extended?.[1]) return percentDecoded(extended[1]);
  const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(value);
  const name = plain?.[1]?.replace(/\\(.)/g, "$1") ?? plain?.[2];
  return name || undefined;
}

/**
 * The request body as a stream the service may destroy: destroying it stops reading the request
 * (the connection is then closed after the answer), and a client that goes away mid-body fails it.
 */
export function requestBody(payload: Readable): Readable {
  const body = new PassThrough();
  let ended = false;
  payload.once("end", () => {
    ended = true;
  });
  // A body the wire limits cut (too slow) fails with their error, which names the cause.
  payload.on("error", (err) => body.destroy(err));
  payload.once("close", () => {
    if (!ended) body.destroy(ERRORS.incompleteBody("the client went away before the body ended"));
  });
  body.once("close", () => {
    if (ended) return;
    payload.unpipe(body);
    payload.pause();
  });
  payload.pipe(body);
  return body;
}

/** How long, and how much, a cut-off connection is still read (and discarded) after its answer. */
const LINGER_MS = 2000;
const LINGER_BYTES = 16 * 1024 * 1024;

/**
 * Closes the connection of a request whose body was not read to the end, without losing the
 * answer. Node closes a `Connection: close` response's socket with destroySoon(), at once: the
 * bytes the client is still sending then make the kernel reset the connection, and a client busy
 * writing loses the answer it had not read yet (EPIPE). Like Go's net/http and nginx, this socket
 * instead half-closes after the answer (so the client stops) and reads and discards what is still
 * in flight for a moment.
 */
export function lingerOnClose(req: IncomingMessage, ms = LINGER_MS): void {
  const socket = req.socket;
  socket.destroySoon = () => {
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
    let discarded = 0;
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) socket.destroy();
    });
    req.resume();
    socket.end();
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
