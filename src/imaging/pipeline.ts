/**
 * The transform pipeline as data (after imgproxy): an ordered list of small steps, each a function
 * over one context object, with the abort signal and the deadline checked between steps. Adding an
 * operation is adding a step. sharp builds one libvips pipeline lazily, so the steps mostly
 * configure it and the pixels move in the last step (encode), bounded by sharp's own timeout.
 */
import type { Sharp } from "sharp";
import { ERRORS } from "../domain/errors.ts";
import type { OutputFormat, TransformSpec } from "../domain/transform-spec.ts";

export type ResolvedSpec = TransformSpec & { format: OutputFormat };

export interface SourceInfo {
  format: string;
  /** Displayed size of one frame, before orientation is applied (as stored in the file). */
  width: number;
  height: number;
  /** Frames that will be processed: 1 unless an animation is kept. */
  frames: number;
  hasAlpha: boolean;
  /** EXIF orientation 1..8; 1 when absent or already applied by the decoder. */
  orientation: number;
}

export interface TransformContext {
  readonly input: Buffer;
  readonly spec: ResolvedSpec;
  readonly maxPixels: number;
  /** Progressive JPEGs with more scans are refused before decoding (too_complex). */
  readonly maxJpegScans?: number;
  /** Keep every frame of an animation when the output format can carry it. */
  readonly animated: boolean;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  /** Set by the load step. */
  source?: SourceInfo;
  image?: Sharp;
  /** Set by the encode step. */
  output?: { data: Buffer; width: number; height: number };
}

export interface Step {
  name: string;
  run(ctx: TransformContext): void | Promise<void>;
}

export async function runPipeline(steps: readonly Step[], ctx: TransformContext): Promise<void> {
  for (const step of steps) {
    ctx.signal?.throwIfAborted();
    if (Date.now() > ctx.deadline) {
      throw ERRORS.unprocessableImage(`the transform ran out of time before ${step.name}`, {
        extra: { reason: "timeout" },
      });
    }
    await step.run(ctx);
  }
}

/** The step's precondition: load ran. */
export function loaded(ctx: TransformContext): { image: Sharp; source: SourceInfo } {
  if (!ctx.image || !ctx.source) throw new Error("pipeline: the load step must come first");
  return { image: ctx.image, source: ctx.source };
}

export function remainingSeconds(ctx: TransformContext): number {
  return Math.max(1, Math.ceil((ctx.deadline - Date.now()) / 1000));
}

/** sharp's error text, first line, bounded: it ends up in logs and problem details. */
export function sharpMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]?.slice(0, 200) ?? "";
}
