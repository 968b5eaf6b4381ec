import { createSHA256 } from "hash-wasm";
import { throwIfAborted } from "./errors.ts";

/** Bytes hashed per step: large enough to keep the WASM hasher busy, small enough to never matter. */
export const HASH_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * SHA-256 (hex) of a Blob, streamed: a 2 GB File (disk-backed in browsers, `fs.openAsBlob` in
 * Node) never sits in memory. Reads go into one reused buffer (a BYOB reader), so memory stays
 * flat by construction instead of waiting for the garbage collector to free a buffer per chunk.
 */
export async function sha256OfBlob(
  blob: Blob,
  opts: { signal?: AbortSignal; onProgress?: (hashed: number) => void; chunkBytes?: number } = {},
): Promise<string> {
  const chunk = opts.chunkBytes ?? HASH_CHUNK_BYTES;
  const hasher = await createSHA256();
  hasher.init();
  let hashed = 0;
  const update = (bytes: Uint8Array) => {
    throwIfAborted(opts.signal);
    hasher.update(bytes);
    hashed += bytes.byteLength;
    opts.onProgress?.(hashed);
  };
  const reader = byobReader(blob);
  if (!reader) {
    for (let offset = 0; offset < blob.size; offset += chunk) {
      update(new Uint8Array(await blob.slice(offset, offset + chunk).arrayBuffer()));
    }
    return hasher.digest("hex");
  }
  try {
    let buffer = new ArrayBuffer(Math.min(chunk, Math.max(1, blob.size)));
    let filled = 0;
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer, filled, buffer.byteLength - filled));
      // The read transfers the buffer; the view it returns is the buffer from now on.
      if (value) {
        buffer = value.buffer as ArrayBuffer;
        filled += value.byteLength;
      }
      if (filled === buffer.byteLength || (done && filled > 0)) {
        update(new Uint8Array(buffer, 0, filled));
        filled = 0;
      }
      if (done) break;
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  }
  return hasher.digest("hex");
}

/** A reader that fills our buffer, where the runtime's Blob streams are byte streams. */
function byobReader(blob: Blob): ReadableStreamBYOBReader | null {
  try {
    return blob.stream().getReader({ mode: "byob" });
  } catch {
    return null;
  }
}
