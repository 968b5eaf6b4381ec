/**
 * What ffprobe says about a video, typed, and the parse of its JSON (`-print_format json
 * -show_format -show_streams`). Pure: the process runs in src/video/ffprobe.ts.
 */
export type StreamType = "video" | "audio" | "subtitle" | "data" | "attachment" | "unknown";

export interface VideoStreamInfo {
  index: number;
  type: StreamType;
  codec: string | null;
  /** A cover picture stored as a video stream (MP4/Matroska "attached pic"), not the video. */
  attachedPicture: boolean;
}

export interface VideoProbe {
  /** ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm". */
  container: string;
  durationS: number;
  /** As displayed: a 90/270 degree rotation (display matrix) already swaps them. */
  width: number;
  height: number;
  fps: number;
  /** Degrees as the display matrix (or the legacy rotate tag) says, normalised to 0, 90, 180, 270. */
  rotation: number;
  videoCodec: string;
  audioCodec: string | null;
  /** The whole file's bit rate in bits/s when ffprobe knows it. */
  bitRate: number | null;
  streams: VideoStreamInfo[];
}

/** Why a file is refused; the HTTP/DB layer maps these (see docs/video.md). */
export const VIDEO_REJECT_REASONS = [
  "not_a_video",
  "type_mismatch",
  "unsupported_codec",
  "corrupt",
  "too_long",
  "dimensions_exceeded",
  "frame_rate_exceeded",
  "too_complex",
  "timeout",
  /** More bytes than the video size limit (the storage's signature should have stopped it). */
  "too_large",
] as const;
export type VideoRejectReason = (typeof VIDEO_REJECT_REASONS)[number];

export type VideoProbeOutcome =
  | { ok: true; probe: VideoProbe }
  | { ok: false; reason: VideoRejectReason; detail: string };

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

function num(v: unknown): number | null {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}

/** "30000/1001" → 29.97; "0/0" (unknown) → null. */
export function parseRate(v: unknown): number | null {
  const s = str(v);
  if (!s) return null;
  const [a, b = "1"] = s.split("/");
  const n = Number(a);
  const d = Number(b);
  if (!Number.isFinite(n) || !Number.isFinite(d) || n <= 0 || d <= 0) return null;
  return n / d;
}

const STREAM_TYPES = new Set<StreamType>(["video", "audio", "subtitle", "data", "attachment"]);

function rotationOf(stream: Json): number {
  let deg: number | null = null;
  const sideData = Array.isArray(stream.side_data_list) ? stream.side_data_list : [];
  for (const sd of sideData) if (isObj(sd) && num(sd.rotation) !== null) deg = num(sd.rotation);
  if (deg === null && isObj(stream.tags)) deg = num(stream.tags.rotate);
  if (deg === null) return 0;
  return (((Math.round(deg / 90) * 90) % 360) + 360) % 360;
}

/** Parses ffprobe's JSON. A file without a playable video stream or without sizes is refused here. */
export function parseFfprobeJson(raw: unknown): VideoProbeOutcome {
  if (!isObj(raw) || !isObj(raw.format) || !Array.isArray(raw.streams)) {
    return { ok: false, reason: "corrupt", detail: "ffprobe reported no format or streams" };
  }
  const format = raw.format;
  const rawStreams = raw.streams.filter(isObj);
  const streams: VideoStreamInfo[] = rawStreams.map((s, i) => {
    const type = str(s.codec_type) as StreamType | null;
    return {
      index: num(s.index) ?? i,
      type: type && STREAM_TYPES.has(type) ? type : "unknown",
      codec: str(s.codec_name),
      attachedPicture: isObj(s.disposition) && num(s.disposition.attached_pic) === 1,
    };
  });
  const videoAt = streams.findIndex((s) => s.type === "video" && !s.attachedPicture);
  const container = str(format.format_name) ?? "unknown";
  if (videoAt < 0) return { ok: false, reason: "not_a_video", detail: `no video stream in ${container}` };
  const v = rawStreams[videoAt] as Json;
  const codedW = num(v.width);
  const codedH = num(v.height);
  if (!codedW || !codedH || codedW <= 0 || codedH <= 0) {
    return { ok: false, reason: "corrupt", detail: "the video stream has no dimensions" };
  }
  const durationS = num(format.duration) ?? num(v.duration);
  if (durationS === null || durationS <= 0) {
    return { ok: false, reason: "corrupt", detail: "the duration is unknown" };
  }
  const fps = parseRate(v.avg_frame_rate) ?? parseRate(v.r_frame_rate);
  if (fps === null) return { ok: false, reason: "corrupt", detail: "the frame rate is unknown" };
  const rotation = rotationOf(v);
  const swap = rotation === 90 || rotation === 270;
  const audio = streams.find((s) => s.type === "audio");
  return {
    ok: true,
    probe: {
      container,
      durationS,
      width: swap ? codedH : codedW,
      height: swap ? codedW : codedH,
      fps,
      rotation,
      videoCodec: streams[videoAt]?.codec ?? "unknown",
      audioCodec: audio ? (audio.codec ?? "unknown") : null,
      bitRate: num(format.bit_rate),
      streams,
    },
  };
}
