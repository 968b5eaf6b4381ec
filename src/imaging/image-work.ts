/**
 * Image work as a port: validation decode, transforms and placeholders, each with a hard deadline.
 * `sandboxedImageWork` runs them in killable child processes (sandbox/pool.ts), which is what the
 * app wires; `inProcessImageWork` calls the same functions directly (tools and unit tests: it
 * cannot stop a decode, so it must never face client bytes in a server).
 */
import { isAppError } from "../domain/errors.ts";
import { REJECT_REASONS, type RejectReason } from "../domain/image.ts";
import { CONTENT_TYPES } from "./formats.ts";
import type { ResolvedSpec } from "./pipeline.ts";
import { thumbhashOf } from "./placeholder.ts";
import { type ProbeRequest, type ProbeResult, probeImage } from "./probe.ts";
import type { ImagePool } from "./sandbox/pool.ts";
import { type TransformResult, transformImage } from "./transform.ts";

export interface WorkOptions {
  /** Hard deadline of this task, from the moment it starts. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Told how long the task ran (sandboxed work only), for a budget shared by several tasks. */
  onRan?: (ms: number) => void;
}

export interface DecodeLimits {
  maxPixels: number;
  maxJpegScans?: number;
}

export interface ImageWork {
  probe(input: Buffer, limits: ProbeRequest, opts: WorkOptions): Promise<ProbeResult>;
  transform(
    input: Buffer,
    spec: ResolvedSpec,
    limits: DecodeLimits & { animated: boolean },
    opts: WorkOptions,
  ): Promise<TransformResult>;
  thumbhash(input: Buffer, limits: DecodeLimits, opts: WorkOptions): Promise<string>;
}

export function sandboxedImageWork(pool: ImagePool): ImageWork {
  return {
    async probe(input, limits, opts) {
      return (await pool.run("probe", { limits }, input, opts)).result;
    },
    async transform(input, spec, limits, opts) {
      // libvips' own timeout stays as a soft bound inside the child; the pool's kill is the hard one.
      const args = { spec, ...limits, timeoutMs: opts.timeoutMs };
      const { result, output } = await pool.run("transform", args, input, opts);
      if (!output) throw new Error("image child: a transform without output");
      const { format } = spec;
      return { data: output, format, contentType: CONTENT_TYPES[format], ...result };
    },
    async thumbhash(input, limits, opts) {
      return (await pool.run("thumbhash", limits, input, opts)).result;
    },
  };
}

export const inProcessImageWork: ImageWork = {
  probe: (input, limits) => probeImage(input, limits),
  transform: (input, spec, limits, opts) =>
    transformImage(input, spec, { ...limits, signal: opts.signal, timeoutMs: opts.timeoutMs }),
  thumbhash: (input, limits) => thumbhashOf(input, limits),
};

/** The reject reason an image-work error stands for, when it is a verdict on the image. */
export function imageVerdict(err: unknown): RejectReason | null {
  if (!isAppError(err) || err.code !== "unprocessable_image") return null;
  const reason = err.extra.reason;
  return (REJECT_REASONS as readonly unknown[]).includes(reason) ? (reason as RejectReason) : null;
}

/** A verdict about cost (deadline or memory), not content: the same work would fail again. */
export function isResourceVerdict(err: unknown): boolean {
  const reason = imageVerdict(err);
  return reason === "timeout" || reason === "too_complex";
}
