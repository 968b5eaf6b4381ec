import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Dirs, errnoOf, objectPath, statFile } from "./local-files.ts";
import type { ListPage } from "./object-store.ts";

const LIST_LIMIT = 1000;

/** S3 orders keys by their UTF-8 bytes, which is not JavaScript's UTF-16 order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Yields the keys under dirs.objects that start with prefix and sort after `after`, in key order,
 * descending only into directories that can hold such keys. A directory sorts as "name/" so
 * its keys come out contiguous and in the right place among its siblings. Only objects/ is
 * walked, so temp files, sidecars and multipart state never show up.
 */
export async function* walkKeys(
  dir: string,
  base: string,
  prefix: string,
  after?: string,
): AsyncGenerator<string> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return;
    throw err;
  }
  const items = entries
    .filter((e) => e.isFile() || e.isDirectory())
    .map((e) => ({
      name: e.name,
      isDir: e.isDirectory(),
      sortKey: `${base}${e.name}${e.isDirectory() ? "/" : ""}`,
    }))
    .sort((x, y) => compareKeys(x.sortKey, y.sortKey));
  for (const item of items) {
    const k = item.sortKey;
    if (item.isDir) {
      if (!k.startsWith(prefix) && !prefix.startsWith(k)) continue;
      // Every key in the directory starts with k: all of them sort before `after` unless after is inside.
      if (after !== undefined && compareKeys(k, after) <= 0 && !after.startsWith(k)) continue;
      yield* walkKeys(join(dir, item.name), k, prefix, after);
    } else {
      if (!k.startsWith(prefix)) continue;
      if (after !== undefined && compareKeys(k, after) <= 0) continue;
      yield k;
    }
  }
}

export async function listObjects(
  dirs: Dirs,
  prefix: string,
  opts: { cursor?: string; limit?: number; signal?: AbortSignal },
): Promise<ListPage> {
  const limit = Math.min(Math.max(Math.floor(opts.limit ?? LIST_LIMIT), 1), LIST_LIMIT);
  const objects: ListPage["objects"] = [];
  for await (const key of walkKeys(dirs.objects, "", prefix, opts.cursor || undefined)) {
    opts.signal?.throwIfAborted();
    const data = await statFile(objectPath(dirs, key));
    if (!data) continue;
    // One key past the page tells whether there is a next page, so the last page has no cursor.
    if (objects.length === limit) return { objects, nextCursor: objects[limit - 1]?.key ?? key };
    objects.push({ key, size: data.size, lastModified: data.mtime });
  }
  return { objects };
}
