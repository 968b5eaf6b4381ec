import { pipeline, type Readable } from "node:stream";
import { PutObjectCommand, type PutObjectCommandInput, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { atMost, exactLength } from "./s3-body.ts";

/** What one S3 PutObject accepts. */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

/** Writes a server-produced object; `length` is known for a Buffer and may be for a stream. */
export async function writeObject(
  client: S3Client,
  params: Omit<PutObjectCommandInput, "Body" | "ContentLength">,
  body: Buffer | Readable,
  length: number | undefined,
  signal?: AbortSignal,
): Promise<void> {
  if (Buffer.isBuffer(body)) {
    await client.send(new PutObjectCommand({ ...params, Body: body }), signal ? { abortSignal: signal } : {});
  } else if (length !== undefined) {
    await putStream(client, params, body, length, signal);
  } else {
    // Unknown length: a plain PutObject would need the whole body in memory to learn its length.
    // Upload sends one PutObject when the body fits in a part, else a multipart upload, holding
    // one part (5 MiB) at a time.
    const upload = new Upload({
      client,
      params: { ...params, Body: pipeline(body, atMost(MAX_SINGLE_PUT_BYTES), () => {}) },
      queueSize: 1,
      leavePartsOnError: false,
      ...(signal ? { abortController: abortControllerFor(signal) } : {}),
    });
    await upload.done();
  }
}

/**
 * The HTTP client pipes the body into the request and does not notice when the body fails, so a
 * failing body (wrong length, source error) aborts the request itself and its error is thrown.
 */
async function putStream(
  client: S3Client,
  params: Omit<PutObjectCommandInput, "Body" | "ContentLength">,
  body: Readable,
  length: number,
  signal?: AbortSignal,
): Promise<void> {
  const failed = new AbortController();
  const payload = pipeline(body, exactLength(length), (err) => {
    if (err) failed.abort(err);
  });
  const abortSignal = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
  try {
    await client.send(new PutObjectCommand({ ...params, Body: payload, ContentLength: length }), {
      abortSignal,
    });
  } catch (err) {
    throw failed.signal.aborted ? failed.signal.reason : err;
  }
}

function abortControllerFor(signal: AbortSignal): AbortController {
  const controller = new AbortController();
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  return controller;
}
