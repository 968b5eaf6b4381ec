import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { ObjectStore } from "../storage/object-store.ts";
import { type HlsFile, hlsContentType, hlsKey, hlsPrefix, parseHlsPath, uploadRank } from "./hls-keys.ts";

export interface UploadHlsOptions {
  /** Objects in flight at once; each is one file stream (64 KiB buffers), so memory stays small. */
  concurrency?: number;
  signal?: AbortSignal;
  /** After each object: how many of how many are stored (the job's last few percent). */
  onUploaded?: (done: number, total: number) => void;
}

export interface UploadedHls {
  objects: number;
  bytes: number;
  masterKey: string;
}

/**
 * Stores a finished HLS tree (transcode.ts's temp dir) under the image's `hls/` prefix: every file
 * with its content type, in uploadRank order with a barrier between ranks, the master last. A
 * file the tree should not hold fails the upload before anything is written. On failure whatever
 * was stored is deleted again (best effort: the sweep knows the prefix), so a retry starts clean.
 */
export async function uploadHlsTree(
  store: ObjectStore,
  imageId: string,
  dir: string,
  opts: UploadHlsOptions = {},
): Promise<UploadedHls> {
  const files = await listTree(dir);
  const ranks = new Map<number, { rel: string; file: HlsFile }[]>();
  for (const f of files) {
    const rank = uploadRank(f.file);
    ranks.set(rank, [...(ranks.get(rank) ?? []), f]);
  }
  if (!files.some((f) => f.file.kind === "master")) throw new Error(`no master playlist in ${dir}`);
  let done = 0;
  let bytes = 0;
  try {
    for (const rank of [...ranks.keys()].sort((a, b) => a - b)) {
      const queue = [...(ranks.get(rank) ?? [])];
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          opts.signal?.throwIfAborted();
          const abs = path.join(dir, next.rel);
          const { size } = await stat(abs);
          const body = createReadStream(abs);
          try {
            await store.put(hlsKey(imageId, next.rel), body, {
              contentType: hlsContentType(next.file),
              contentLength: size,
              signal: opts.signal,
            });
          } finally {
            body.destroy();
          }
          bytes += size;
          opts.onUploaded?.(++done, files.length);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
    }
  } catch (err) {
    await store.deletePrefix(hlsPrefix(imageId)).catch(() => {});
    throw err;
  }
  return { objects: files.length, bytes, masterKey: hlsKey(imageId, "master.m3u8") };
}

/** Every file of the tree by its relative path; anything ffmpeg should not have written throws. */
async function listTree(dir: string): Promise<{ rel: string; file: HlsFile }[]> {
  const out: { rel: string; file: HlsFile }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join("/");
    const file = parseHlsPath(rel);
    if (!file) throw new Error(`unexpected file in the HLS output: ${rel}`);
    out.push({ rel, file });
  }
  return out;
}
