/**
 * The messages between the image pool (parent) and one image child process. Bytes travel as temp
 * files, not over the IPC channel: measured here, a 5 MB Buffer costs ~160 ms through
 * `serialization: "advanced"` and ~30 ms written and read back through the page cache.
 */
import { AppError } from "../../domain/errors.ts";
import type { ResolvedSpec } from "../pipeline.ts";
import type { ProbeRequest, ProbeResult } from "../probe.ts";

export interface TaskArgs {
  probe: { limits: ProbeRequest };
  transform: {
    spec: ResolvedSpec;
    maxPixels: number;
    animated: boolean;
    maxJpegScans?: number;
    timeoutMs: number;
  };
  thumbhash: { maxPixels: number; maxJpegScans?: number };
}

export interface TaskResults {
  probe: ProbeResult;
  transform: { width: number; height: number };
  thumbhash: string;
}

export type TaskKind = keyof TaskArgs;

export interface TaskMessage<K extends TaskKind = TaskKind> {
  id: number;
  kind: K;
  args: TaskArgs[K];
  inputPath: string;
  /** Where the child writes the task's output bytes (transform only). */
  outputPath: string;
}

/**
 * Outputs up to this size (thumbnails, most variants) travel in the reply: a file would cost the
 * parent four thread-pool round trips (open, stat, read, close), each a wakeup on a loaded machine.
 */
export const INLINE_OUTPUT_BYTES = 256 * 1024;

export interface SerializedError {
  message: string;
  app?: { status: number; code: string; title: string; extra: Record<string, unknown> };
}

export type ChildMessage =
  | { ready: true }
  /** output: the bytes themselves when small (INLINE_OUTPUT_BYTES), else true for a file at outputPath. */
  | { id: number; ok: true; result: unknown; output: boolean | Uint8Array }
  | { id: number; ok: false; error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError) {
    return {
      message: err.message,
      app: { status: err.status, code: err.code, title: err.title, extra: err.extra },
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

export function deserializeError(e: SerializedError): Error {
  if (e.app) return new AppError({ ...e.app, detail: e.message });
  return new Error(`image child: ${e.message}`);
}
