import type { VideoDemuxer } from "../domain/video.ts";
import { parseFfprobeJson, type VideoProbeOutcome } from "../domain/video-probe.ts";
import { lastLines, runTool } from "./run-tool.ts";

export interface FfprobeOptions {
  /** The ffprobe binary (Debian's package installs /usr/bin/ffprobe). */
  bin?: string;
  timeoutMs: number;
  /** Forces the demuxer the magic bytes named: ffprobe never guesses a format from hostile bytes. */
  demuxer: VideoDemuxer;
  signal?: AbortSignal;
  /** ffprobe's JSON is a few KiB per stream; a file built to print megabytes is refused. */
  maxOutputBytes?: number;
}

/** ffprobe could not run at all: the video is not at fault (retry the job, alert the operator). */
export class VideoToolError extends Error {
  constructor(
    readonly code: "not_installed" | "aborted",
    readonly tool: string,
    detail: string,
  ) {
    super(`${tool}: ${detail}`);
    this.name = "VideoToolError";
  }
}

/**
 * Probes a video FILE (the worker streamed it from storage to disk; it is never held in memory).
 * Whatever the content makes ffprobe do (fail, hang, print too much) is a rejection with a reason;
 * only a missing binary or the caller's abort throw.
 */
export async function probeVideoFile(path: string, opts: FfprobeOptions): Promise<VideoProbeOutcome> {
  const bin = opts.bin ?? "ffprobe";
  const result = await runTool({
    bin,
    args: [
      ...["-v", "error", "-hide_banner"],
      // Local file only: no network, no references out of the file (an HLS/concat trick).
      ...["-protocol_whitelist", "file", "-f", opts.demuxer],
      ...["-print_format", "json", "-show_format", "-show_streams"],
      // "file:" so a path starting with a dash or containing a colon is never an option or protocol.
      `file:${path}`,
    ],
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
    maxStdoutBytes: opts.maxOutputBytes ?? 1024 * 1024,
  });
  switch (result.outcome) {
    case "not_installed":
      throw new VideoToolError("not_installed", bin, "not found (install Debian's ffmpeg package)");
    case "aborted":
      throw new VideoToolError("aborted", bin, "aborted");
    case "timeout":
      return { ok: false, reason: "timeout", detail: `ffprobe ran past ${opts.timeoutMs} ms` };
    case "output_too_large":
      return { ok: false, reason: "too_complex", detail: "ffprobe's report is larger than allowed" };
  }
  if (result.code !== 0) {
    return {
      ok: false,
      reason: "corrupt",
      detail: `ffprobe: ${lastLines(result.stderr) || `exit ${result.code}`}`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    return { ok: false, reason: "corrupt", detail: "ffprobe printed no valid JSON" };
  }
  return parseFfprobeJson(json);
}
