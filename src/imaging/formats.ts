import type { OutputFormat } from "../domain/transform-spec.ts";

export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = Object.freeze({
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
});

/**
 * What the pipeline decodes. Anything else (SVG, PDF, TIFF, BMP, …) is refused before sharp sees
 * it: libvips would happily rasterise an SVG or open a PDF, which is attack surface for nothing.
 */
export const DECODABLE = new Set<string>(["jpeg", "png", "webp", "avif", "gif", "heic"]);

export const HAS_ALPHA: Readonly<Record<OutputFormat, boolean>> = Object.freeze({
  jpeg: false,
  png: true,
  webp: true,
  avif: true,
  gif: true,
});

export const CAN_ANIMATE: Readonly<Record<OutputFormat, boolean>> = Object.freeze({
  jpeg: false,
  png: false,
  webp: true,
  avif: false,
  gif: true,
});

/** Where alpha goes when the output has none, and the bars of fit=contain in such an output. */
export const OPAQUE_BACKGROUND = Object.freeze({ r: 255, g: 255, b: 255, alpha: 1 });
export const TRANSPARENT_BACKGROUND = Object.freeze({ r: 0, g: 0, b: 0, alpha: 0 });
