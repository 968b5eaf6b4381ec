import type { VideoDemuxer } from "../domain/video.ts";
import type { Rung } from "../domain/video-ladder.ts";

/**
 * ffmpeg command lines for the HLS ladder and the poster. Pure (tested on their own); the
 * processes run in transcode.ts.
 *
 * Segments are fMP4 (CMAF) by default: Safari, hls.js and ExoPlayer play them natively (hls.js
 * does not transmux them as it must MPEG-TS), they carry ~10% less container overhead than TS,
 * and the same init + segments could later be listed in a DASH manifest. MPEG-TS stays available
 * for very old players.
 */
export type SegmentType = "fmp4" | "mpegts";

export interface HlsArgsInput {
  input: string;
  demuxer: VideoDemuxer;
  sourceFps: number;
  hasAudio: boolean;
  ladder: readonly Rung[];
  outDir: string;
  segmentSeconds: number;
  segmentType: SegmentType;
  /**
   * Threads for the decoder, and for the encoder of a one-rung ladder. With several rungs each
   * encoder gets one thread: the encoders already run side by side, and every x264 frame thread
   * holds frames of its own (a 1080p four-rung ladder peaked at 454 MB RSS with two threads per
   * encoder, 358 MB with one, for the same CPU time).
   */
  threads: number;
  /** x264 preset: veryfast is ~3× faster than medium for ~15% more bits. */
  preset: string;
}

export const MASTER_PLAYLIST = "master.m3u8";
export const RENDITION_PLAYLIST = "index.m3u8";
export const POSTER_FILE = "poster.jpg";

export function segmentExtension(type: SegmentType): "m4s" | "ts" {
  return type === "fmp4" ? "m4s" : "ts";
}

/** Options in front of every input: no stdin, local files only, the demuxer the magic bytes named. */
function inputArgs(input: string, demuxer: VideoDemuxer, threads: number): string[] {
  return [
    ...["-hide_banner", "-nostdin", "-v", "error", "-nostats", "-threads", String(threads)],
    ...["-protocol_whitelist", "file", "-f", demuxer, "-i", `file:${input}`],
  ];
}

export function hlsArgs(o: HlsArgsInput): string[] {
  const n = o.ladder.length;
  const splits = Array.from({ length: n }, (_, i) => `[s${i}]`).join("");
  const chains = o.ladder.map((r, i) => {
    const fps = o.sourceFps > r.fps + 0.01 ? `,fps=${r.fps}` : "";
    return `[s${i}]scale=${r.width}:${r.height}:flags=bicubic,setsar=1${fps},format=yuv420p[v${i}]`;
  });
  const graph = [`[0:v:0]split=${n}${splits}`, ...chains].join(";");
  const perRung = o.ladder.flatMap((r, i) => [
    ...["-map", `[v${i}]`],
    ...(o.hasAudio ? ["-map", "0:a:0"] : []),
    ...[`-b:v:${i}`, `${r.videoKbps}k`, `-maxrate:v:${i}`, `${r.maxrateKbps}k`],
    ...[`-bufsize:v:${i}`, `${r.bufsizeKbps}k`],
    ...(o.hasAudio ? [`-b:a:${i}`, `${r.audioKbps}k`] : []),
  ]);
  const streamMap = o.ladder
    .map((r, i) => (o.hasAudio ? `v:${i},a:${i},name:${r.name}` : `v:${i},name:${r.name}`))
    .join(" ");
  const ext = segmentExtension(o.segmentType);
  return [
    ...inputArgs(o.input, o.demuxer, o.threads),
    ...["-filter_complex", graph, "-filter_complex_threads", "1"],
    ...perRung,
    // Metadata (a phone's GPS position, the editor's names) and chapters stay out of what we serve.
    ...["-map_metadata", "-1", "-map_chapters", "-1"],
    ...["-c:v", "libx264", "-preset", o.preset, "-profile:v", "high"],
    ...["-threads", String(o.ladder.length > 1 ? 1 : o.threads)],
    // A keyframe exactly at every segment boundary, in every rendition: players switch cleanly.
    ...["-sc_threshold", "0", "-force_key_frames", `expr:gte(t,n_forced*${o.segmentSeconds})`],
    ...(o.hasAudio ? ["-c:a", "aac", "-ac", "2", "-ar", "48000"] : []),
    ...["-f", "hls", "-hls_time", String(o.segmentSeconds), "-hls_playlist_type", "vod"],
    ...["-hls_flags", "independent_segments", "-hls_segment_type", o.segmentType],
    ...(o.segmentType === "fmp4" ? ["-hls_fmp4_init_filename", "init.mp4"] : []),
    ...["-hls_segment_filename", `${o.outDir}/%v/seg_%05d.${ext}`],
    ...["-master_pl_name", MASTER_PLAYLIST, "-var_stream_map", streamMap],
    ...["-progress", "pipe:1"],
    `${o.outDir}/%v/${RENDITION_PLAYLIST}`,
  ];
}

export interface PosterArgsInput {
  input: string;
  demuxer: VideoDemuxer;
  atS: number;
  width: number;
  height: number;
  output: string;
  threads: number;
}

/** One JPEG frame; -ss before -i seeks in the demuxer (to the keyframe before), so it is quick. */
export function posterArgs(o: PosterArgsInput): string[] {
  return [
    ...["-ss", o.atS.toFixed(3)],
    ...inputArgs(o.input, o.demuxer, o.threads),
    ...["-map", "0:v:0", "-frames:v", "1", "-vf", `scale=${o.width}:${o.height},setsar=1`],
    ...["-map_metadata", "-1", "-q:v", "2", "-f", "image2", "-update", "1", o.output],
  ];
}
