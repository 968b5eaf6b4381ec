import { hashPrefix, imagePrefix, isImageId } from "../domain/keys.ts";
import { isRungName } from "../domain/video-ladder.ts";

/**
 * Where a video's HLS tree lives in storage, under the image's own prefix (docs/architecture.md
 * "Object key layout"), so deleting or purging the image's prefix takes the renditions too:
 *
 *   {p}/{id}/hls/master.m3u8            written last: it exists only when every rendition does
 *   {p}/{id}/hls/poster.jpg
 *   {p}/{id}/hls/{rung}/index.m3u8      rung: "720p", "480p"…
 *   {p}/{id}/hls/{rung}/init_0.mp4      fMP4 only
 *   {p}/{id}/hls/{rung}/seg_00000.m4s   (or .ts)
 *
 * The relative paths are the ones ffmpeg writes and the playlists reference, so the tree is
 * uploaded as is and delivery maps `/i/{id}/hls/{path}` to a key without rewriting a playlist.
 * Pure.
 */
export type HlsFile =
  | { kind: "master" }
  | { kind: "poster" }
  | { kind: "playlist"; rung: string }
  | { kind: "init"; rung: string }
  | { kind: "segment"; rung: string; index: number; ext: "m4s" | "ts" };

export function hlsPrefix(imageId: string): string {
  return `${imagePrefix(imageId)}hls/`;
}

export function hlsMasterKey(imageId: string): string {
  return `${hlsPrefix(imageId)}master.m3u8`;
}

/** A path inside the tree ("720p/seg_00003.m4s"); null for anything ffmpeg does not write. */
export function parseHlsPath(rel: string): HlsFile | null {
  if (rel === "master.m3u8") return { kind: "master" };
  if (rel === "poster.jpg") return { kind: "poster" };
  const parts = rel.split("/");
  if (parts.length !== 2) return null;
  const [rung, name] = parts as [string, string];
  if (!isRungName(rung)) return null;
  if (name === "index.m3u8") return { kind: "playlist", rung };
  // ffmpeg numbers the init section per variant stream ("init_0.mp4") when given "init.mp4".
  if (/^init(_\d{1,2})?\.mp4$/.test(name)) return { kind: "init", rung };
  const seg = /^seg_(\d{5,6})\.(m4s|ts)$/.exec(name);
  if (seg) return { kind: "segment", rung, index: Number(seg[1]), ext: seg[2] as "m4s" | "ts" };
  return null;
}

/** The storage key of a path in the tree; throws on a path that is not one (never a traversal). */
export function hlsKey(imageId: string, rel: string): string {
  if (!isImageId(imageId)) throw new Error(`not an image id: ${imageId}`);
  if (!parseHlsPath(rel)) throw new Error(`not a path of an HLS tree: ${rel}`);
  return `${hlsPrefix(imageId)}${rel}`;
}

/** One of our HLS keys (sweep, reconciler, delivery); null for anything else or a forged prefix. */
export function parseHlsKey(key: string): { imageId: string; rel: string; file: HlsFile } | null {
  const m = /^([0-9a-f]{4})\/([^/]+)\/hls\/(.+)$/.exec(key);
  if (!m) return null;
  const [, prefix, imageId, rel] = m as unknown as [string, string, string, string];
  if (!isImageId(imageId) || hashPrefix(imageId) !== prefix) return null;
  const file = parseHlsPath(rel);
  return file ? { imageId, rel, file } : null;
}

export function hlsContentType(file: HlsFile): string {
  switch (file.kind) {
    case "master":
    case "playlist":
      return "application/vnd.apple.mpegurl";
    case "poster":
      return "image/jpeg";
    case "init":
      return "video/mp4";
    case "segment":
      return file.ext === "ts" ? "video/mp2t" : "video/mp4";
  }
}

/**
 * Upload order: segments and init sections, then each rendition's playlist, then the poster,
 * the master last. A reader that finds a playlist finds its segments; one that finds the master
 * finds everything (the state flip to ready comes after the master in any case).
 */
export function uploadRank(file: HlsFile): number {
  switch (file.kind) {
    case "segment":
    case "init":
      return 0;
    case "playlist":
      return 1;
    case "poster":
      return 2;
    case "master":
      return 3;
  }
}
