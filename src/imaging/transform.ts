import type { OutputFormat } from "../domain/transform-spec.ts";
import { CONTENT_TYPES } from "./formats.ts";
import { type ResolvedSpec, runPipeline, type Step, type TransformContext } from "./pipeline.ts";
import { colour, flatten } from "./steps/colour.ts";
import { encode } from "./steps/encode.ts";
import { load } from "./steps/load.ts";
import { orient } from "./steps/orient.ts";
import { resize } from "./steps/resize.ts";

/** The pipeline, in order. Metadata stripping is part of encode (sharp writes none by default). */
export const STEPS: readonly Step[] = Object.freeze([load, orient, resize, colour, flatten, encode]);

export const DEFAULT_TRANSFORM_TIMEOUT_MS = 30_000;

export interface TransformOptions {
  /** Largest width x height (x frames when an animation is kept) decoded; checked from the header. */
  maxPixels: number;
  /** Keep every frame of an animated input when the output is GIF or WebP; default first frame only. */
  animated?: boolean;
  signal?: AbortSignal;
  /** JPEGs with more scans than this are refused before decoding (too_complex). */
  maxJpegScans?: number;
  /** The whole transform, decode to encode; default 30 s. */
  timeoutMs?: number;
}

export interface TransformResult {
  data: Buffer;
  format: OutputFormat;
  contentType: string;
  width: number;
  height: number;
}

/**
 * One variant from one original. Throws unprocessable_image (422) when the input does not decode,
 * is over the pixel limit, is not a format the pipeline takes, or the work runs out of time;
 * `extra.reason` says which. An abort rejects with the signal's reason.
 */
export async function transformImage(
  input: Buffer,
  spec: ResolvedSpec,
  opts: TransformOptions,
): Promise<TransformResult> {
  const ctx: TransformContext = {
    input,
    spec,
    maxPixels: opts.maxPixels,
    maxJpegScans: opts.maxJpegScans,
    animated: opts.animated ?? false,
    deadline: Date.now() + (opts.timeoutMs ?? DEFAULT_TRANSFORM_TIMEOUT_MS),
    signal: opts.signal,
  };
  await runPipeline(STEPS, ctx);
  if (!ctx.output) throw new Error("pipeline: no encode step");
  return {
    data: ctx.output.data,
    format: spec.format,
    contentType: CONTENT_TYPES[spec.format],
    width: ctx.output.width,
    height: ctx.output.height,
  };
}
