import type { VideoProbe, VideoRejectReason } from "./video-probe.ts";
import type { SniffedVideo } from "./video-sniff.ts";

/**
 * Which videos imgup accepts (issue 20). Pure: the magic bytes, ffprobe's view and the declared
 * type in, a verdict out. The defaults are what config will expose (docs/video.md).
 */
export const VIDEO_CONTENT_TYPES = ["video/mp4", "video/quicktime", "video/webm"] as const;
export type VideoContentType = (typeof VIDEO_CONTENT_TYPES)[number];

export function isVideoContentType(value: string): value is VideoContentType {
  return (VIDEO_CONTENT_TYPES as readonly string[]).includes(value);
}

export interface VideoLimits {
  maxDurationS: number;
  maxWidth: number;
  maxHeight: number;
  /** Width × height (as displayed): a 4096×4096 square is more work than 4K UHD. */
  maxPixels: number;
  minSide: number;
  maxFps: number;
  /** More streams than a camera or an editor writes is a file built to cost us work. */
  maxStreams: number;
  videoCodecs: readonly string[];
  audioCodecs: readonly string[];
}

export const DEFAULT_VIDEO_LIMITS: VideoLimits = {
  maxDurationS: 3 * 3600,
  maxWidth: 4096,
  maxHeight: 4096,
  maxPixels: 4096 * 2304,
  minSide: 16,
  maxFps: 120,
  maxStreams: 16,
  videoCodecs: ["h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores"],
  audioCodecs: ["aac", "mp3", "opus", "vorbis", "ac3", "eac3", "flac", "alac", "pcm_s16le", "pcm_s24le"],
};

// WebM is a Matroska profile restricted to these codecs (webmproject.org container guidelines).
const WEBM_VIDEO = new Set(["vp8", "vp9", "av1"]);
const WEBM_AUDIO = new Set(["opus", "vorbis"]);

/** The demuxer to force on ffprobe/ffmpeg: never let them guess a format from hostile bytes. */
export type VideoDemuxer = "mov" | "matroska";

export type VideoVerdict =
  | { ok: true; demuxer: VideoDemuxer }
  | { ok: false; reason: VideoRejectReason; detail: string };

/**
 * Before ffprobe runs: the first bytes must be a container of the declared type. MP4 and QuickTime
 * are one box format, one ffprobe demuxer ("mov,mp4,m4a,3gp,3g2,mj2"), and browsers label a file
 * by its extension, so either declared type accepts either brand; Matroska must say DocType webm.
 */
export function checkMagic(declared: VideoContentType, sniffed: SniffedVideo | null): VideoVerdict {
  if (!sniffed) return reject("not_a_video", "the bytes are not an MP4, QuickTime or WebM container");
  if (declared === "video/webm") {
    if (sniffed.family !== "matroska")
      return reject("type_mismatch", "declared video/webm, the bytes are MP4");
    if (sniffed.docType !== "webm") {
      return reject(
        "type_mismatch",
        `declared video/webm, the EBML DocType is ${sniffed.docType ?? "unknown"}`,
      );
    }
    return { ok: true, demuxer: "matroska" };
  }
  if (sniffed.family !== "isobmff")
    return reject("type_mismatch", `declared ${declared}, the bytes are Matroska/WebM`);
  return { ok: true, demuxer: "mov" };
}

const FORMAT_NAMES: Record<VideoDemuxer, string> = {
  mov: "mov,mp4,m4a,3gp,3g2,mj2",
  matroska: "matroska,webm",
};

/** After ffprobe: what it found must be what the magic said, inside the limits. */
export function checkProbe(
  declared: VideoContentType,
  demuxer: VideoDemuxer,
  probe: VideoProbe,
  limits: VideoLimits = DEFAULT_VIDEO_LIMITS,
): VideoVerdict {
  if (probe.container !== FORMAT_NAMES[demuxer]) {
    return reject("type_mismatch", `declared ${declared}, ffprobe read ${probe.container}`);
  }
  if (probe.streams.length > limits.maxStreams) {
    return reject("too_complex", `${probe.streams.length} streams (at most ${limits.maxStreams})`);
  }
  const webm = declared === "video/webm";
  if (!limits.videoCodecs.includes(probe.videoCodec) || (webm && !WEBM_VIDEO.has(probe.videoCodec))) {
    return reject("unsupported_codec", `video codec ${probe.videoCodec} is not accepted in ${declared}`);
  }
  if (
    probe.audioCodec !== null &&
    (!limits.audioCodecs.includes(probe.audioCodec) || (webm && !WEBM_AUDIO.has(probe.audioCodec)))
  ) {
    return reject("unsupported_codec", `audio codec ${probe.audioCodec} is not accepted in ${declared}`);
  }
  if (probe.durationS > limits.maxDurationS) {
    return reject("too_long", `${round(probe.durationS)} s (at most ${limits.maxDurationS} s)`);
  }
  const { width: w, height: h } = probe;
  if (w > limits.maxWidth || h > limits.maxHeight || w * h > limits.maxPixels) {
    return reject(
      "dimensions_exceeded",
      `${w}×${h} (at most ${limits.maxWidth}×${limits.maxHeight}, ${limits.maxPixels} pixels)`,
    );
  }
  if (Math.min(w, h) < limits.minSide) {
    return reject("dimensions_exceeded", `${w}×${h} (at least ${limits.minSide} pixels a side)`);
  }
  if (probe.fps > limits.maxFps) {
    return reject("frame_rate_exceeded", `${round(probe.fps)} fps (at most ${limits.maxFps})`);
  }
  return { ok: true, demuxer };
}

export interface TranscodeBudget {
  /** Fixed cost: process start, probing, the poster, the upload of a short video. */
  baseMs: number;
  /** Allowed wall time per second of video for one 1080p30 rendition's worth of pixels. */
  msPerSecondAt1080p: number;
  maxMs: number;
}

export const DEFAULT_TRANSCODE_BUDGET: TranscodeBudget = {
  baseMs: 120_000,
  // 4× slower than real time per 1080p30-equivalent: x264 veryfast on two busy cores manages ~1×.
  msPerSecondAt1080p: 4_000,
  maxMs: 12 * 3600_000,
};

/**
 * The hard deadline of one transcode, scaled to the duration and to the pixels the ladder encodes
 * (a 240p-only ladder is a fraction of a 1080p one; never below a quarter, decoding costs too).
 */
export function transcodeDeadlineMs(
  durationS: number,
  ladder: readonly { width: number; height: number; fps: number }[],
  budget: TranscodeBudget = DEFAULT_TRANSCODE_BUDGET,
): number {
  const load = ladder.reduce((sum, r) => sum + (r.width * r.height * r.fps) / (1920 * 1080 * 30), 0);
  const ms = budget.baseMs + durationS * budget.msPerSecondAt1080p * Math.max(0.25, load);
  return Math.min(budget.maxMs, Math.ceil(ms));
}

function reject(reason: VideoRejectReason, detail: string): VideoVerdict {
  return { ok: false, reason, detail };
}

const round = (n: number) => Math.round(n * 100) / 100;
