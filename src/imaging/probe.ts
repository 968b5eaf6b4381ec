import sharp, { type Metadata } from "sharp";
import type { RejectReason } from "../domain/image.ts";

export interface ProbeLimits {
  maxPixels: number;
}

export type ProbeResult =
  | { ok: true; width: number; height: number; format: string; pages: number }
  | { ok: false; reason: RejectReason; detail: string };

/** sharp names AVIF and HEIC both "heif"; the compression tells them apart. */
function formatName(meta: Metadata): string {
  if (meta.format === "heif") return meta.compression === "av1" ? "avif" : "heic";
  return meta.format ?? "unknown";
}

/**
 * Reads the header only (dimensions, frame count) and enforces the pixel limit before any decode,
 * then decodes every pixel to catch truncated or corrupt data. Decoding streams through libvips
 * (stats() reads sequentially), so memory stays bounded by the pixel limit, not the file.
 */
export async function probeImage(input: Buffer, limits: ProbeLimits): Promise<ProbeResult> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    return { ok: false, reason: "corrupt", detail: `unreadable header: ${message(err)}` };
  }
  const width = meta.width ?? 0;
  const pageHeight = meta.pageHeight ?? meta.height ?? 0;
  const pages = Math.max(1, meta.pages ?? 1);
  if (width <= 0 || pageHeight <= 0)
    return { ok: false, reason: "corrupt", detail: "no dimensions in the header" };
  const pixels = width * pageHeight * pages;
  if (pixels > limits.maxPixels) {
    const what = pages > 1 ? `${width}x${pageHeight}x${pages} frames` : `${width}x${pageHeight}`;
    return {
      ok: false,
      reason: "too_many_pixels",
      detail: `${what} = ${pixels} pixels, limit ${limits.maxPixels}`,
    };
  }
  try {
    await sharp(input, {
      limitInputPixels: limits.maxPixels,
      failOn: "error",
      sequentialRead: true,
      pages: -1,
    }).stats();
  } catch (err) {
    return { ok: false, reason: "corrupt", detail: `does not decode: ${message(err)}` };
  }
  return { ok: true, width, height: pageHeight, format: formatName(meta), pages };
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]?.slice(0, 200) ?? "";
}
