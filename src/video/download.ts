import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ObjectHead, ObjectStore } from "../storage/object-store.ts";

export interface DownloadedVideo {
  /** The version that was read: promote it with copyIfMatch(head.etag), never a later one. */
  head: ObjectHead;
  bytes: number;
  /** Lower-case hex, computed while streaming (dedup by hash needs no second read). */
  sha256: string;
}

export class VideoDownloadError extends Error {
  constructor(
    readonly code: "too_large" | "short_read",
    detail: string,
  ) {
    super(detail);
    this.name = "VideoDownloadError";
  }
}

/**
 * Streams an object to a new local file (ffprobe and ffmpeg need a seekable file; the video is
 * never held in memory: one chunk at a time, with backpressure). null when there is no object at
 * the key. The file is removed again on any failure, the abort included.
 */
export async function downloadToFile(
  store: ObjectStore,
  key: string,
  file: string,
  opts: { maxBytes: number; signal?: AbortSignal },
): Promise<DownloadedVideo | null> {
  const got = await store.getStream(key, opts.signal);
  if (!got) return null;
  const { head, body } = got;
  if (head.size > opts.maxBytes) {
    body.destroy();
    throw new VideoDownloadError("too_large", `${head.size} bytes (at most ${opts.maxBytes})`);
  }
  const hash = createHash("sha256");
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      // The storage said head.size; a body that runs longer is not the object we sized.
      if (bytes > opts.maxBytes)
        return done(new VideoDownloadError("too_large", `more than ${opts.maxBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  // "wx": never write over a file someone else made at this path (nor remove it on failure).
  const out = createWriteStream(file, { flags: "wx" });
  let created = false;
  out.once("open", () => {
    created = true;
  });
  try {
    await pipeline(body, meter, out, { signal: opts.signal });
    if (bytes !== head.size) {
      throw new VideoDownloadError("short_read", `read ${bytes} of ${head.size} bytes`);
    }
  } catch (err) {
    body.destroy();
    if (created) await rm(file, { force: true });
    throw err;
  }
  return { head, bytes, sha256: hash.digest("hex") };
}
