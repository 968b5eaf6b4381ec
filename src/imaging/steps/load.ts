import sharp, { type Metadata } from "sharp";
import { ERRORS } from "../../domain/errors.ts";
import { SNIFF_BYTES, sniff } from "../../domain/sniff.ts";
import { CAN_ANIMATE, DECODABLE } from "../formats.ts";
import { decodeHeic } from "../heic.ts";
import { checkJpegScans } from "../jpeg-scans.ts";
import { type Step, sharpMessage, type TransformContext } from "../pipeline.ts";

/**
 * Decides what is decoded and how much: the sniffed format must be one the pipeline accepts, the
 * header's pixel count (frames included when an animation is kept) must fit the limit before any
 * pixel is decoded, and decoding fails on errors, truncation included, rather than guessing.
 */
export const load: Step = {
  name: "load",
  async run(ctx) {
    const sniffed = sniff(ctx.input.subarray(0, SNIFF_BYTES));
    if (sniffed.kind !== "image" || !DECODABLE.has(sniffed.format)) {
      const what = sniffed.mime ?? "unknown bytes";
      throw ERRORS.unprocessableImage(`${what} is not an image format this service transforms`, {
        extra: { reason: "unsupported_format" },
      });
    }
    if (sniffed.format === "heic") return loadHeic(ctx);
    if (sniffed.format === "jpeg") checkJpegScans(ctx.input, ctx.maxJpegScans);
    let meta: Metadata;
    try {
      meta = await sharp(ctx.input, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw corrupt(`unreadable header: ${sharpMessage(err)}`);
    }
    const width = meta.width ?? 0;
    const height = meta.pageHeight ?? meta.height ?? 0;
    const pages = Math.max(1, meta.pages ?? 1);
    if (width <= 0 || height <= 0) throw corrupt("no dimensions in the header");
    const keepFrames = ctx.animated && pages > 1 && CAN_ANIMATE[ctx.spec.format];
    const frames = keepFrames ? pages : 1;
    checkPixels(width, height, frames, ctx.maxPixels);
    ctx.source = {
      format: meta.format ?? "unknown",
      width,
      height,
      frames,
      hasAlpha: meta.hasAlpha ?? false,
      orientation: meta.orientation ?? 1,
    };
    ctx.image = sharp(ctx.input, {
      limitInputPixels: ctx.maxPixels,
      failOn: "error",
      pages: keepFrames ? -1 : 1,
    });
  },
};

async function loadHeic(ctx: TransformContext): Promise<void> {
  const decoded = await decodeHeic(ctx.input, {
    maxPixels: ctx.maxPixels,
    timeoutMs: Math.max(1, ctx.deadline - Date.now()),
  });
  const { width, height } = decoded;
  let image = sharp(decoded.data, { raw: { width, height, channels: 4 } });
  // The decoder always hands over RGBA; an opaque alpha channel would only cost bytes downstream.
  if (!decoded.hasAlpha) image = image.removeAlpha();
  // libheif already applied the container's rotation and mirroring.
  ctx.source = { format: "heic", width, height, frames: 1, hasAlpha: decoded.hasAlpha, orientation: 1 };
  ctx.image = image;
}

function checkPixels(width: number, height: number, frames: number, max: number): void {
  const pixels = width * height * frames;
  if (pixels <= max) return;
  const what = frames > 1 ? `${width}x${height}x${frames} frames` : `${width}x${height}`;
  throw ERRORS.unprocessableImage(`${what} = ${pixels} pixels, limit ${max}`, {
    extra: { reason: "too_many_pixels" },
  });
}

function corrupt(detail: string) {
  return ERRORS.unprocessableImage(detail, { extra: { reason: "corrupt" } });
}
