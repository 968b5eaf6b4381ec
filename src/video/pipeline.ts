import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import {
  DEFAULT_TRANSCODE_BUDGET,
  DEFAULT_VIDEO_LIMITS,
  type TranscodeBudget,
  transcodeDeadlineMs,
  type VideoContentType,
  type VideoLimits,
} from "../domain/video.ts";
import { DEFAULT_LADDER, type LadderOptions, type Rung, renditionLadder } from "../domain/video-ladder.ts";
import type { VideoProbe, VideoRejectReason } from "../domain/video-probe.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type DownloadedVideo, downloadToFile, VideoDownloadError } from "./download.ts";
import type { SegmentType } from "./ffmpeg-args.ts";
import { hlsKey, hlsPrefix } from "./hls-keys.ts";
import { type UploadedHls, uploadHlsTree } from "./hls-upload.ts";
import { TranscodeError, transcodeToHls } from "./transcode.ts";
import { validateVideoFile } from "./validate.ts";

export type VideoStage = "download" | "validate" | "transcode" | "upload";

export interface VideoPipelineInput {
  store: ObjectStore;
  imageId: string;
  /** Where the uploaded bytes are (the upload key, or the original on a re-run). */
  sourceKey: string;
  declared: VideoContentType;
  /** A local directory with room for the source and its renditions; a subdirectory is used. */
  workDir: string;
  maxBytes: number;
  limits?: VideoLimits;
  ladder?: LadderOptions;
  budget?: TranscodeBudget;
  probeTimeoutMs?: number;
  segmentType?: SegmentType;
  ffmpegBin?: string;
  ffprobeBin?: string;
  signal?: AbortSignal;
  /** The stage and 0..1 within it (the transcode is nearly all of the time). */
  onProgress?: (stage: VideoStage, fraction: number) => void;
}

export type VideoPipelineResult =
  | {
      ok: true;
      source: DownloadedVideo;
      probe: VideoProbe;
      ladder: Rung[];
      hls: UploadedHls;
      posterKey: string;
    }
  /** source is null when the bytes were refused before they were all read (too_large). */
  | { ok: false; source: DownloadedVideo | null; reason: VideoRejectReason; detail: string };

/**
 * A stored video to a stored HLS tree: download to a temp file, validate, transcode, upload. What
 * the content causes is a rejection with a reason; what is not its fault (storage, a missing
 * ffmpeg, the abort) throws, and the job retries. null: there is no object at sourceKey. Local
 * files are removed in every case; on a throw nothing is left under `hls/` (hls-upload.ts).
 * The caller owns the state: it promotes the source (copyIfMatch on source.head.etag) and marks
 * the video ready after this returns ok.
 */
export async function runVideoPipeline(input: VideoPipelineInput): Promise<VideoPipelineResult | null> {
  const report = input.onProgress ?? (() => {});
  const work = await mkdtemp(path.join(input.workDir, "imgup-video-"));
  try {
    report("download", 0);
    const sourceFile = path.join(work, "source");
    let source: DownloadedVideo | null;
    try {
      source = await downloadToFile(input.store, input.sourceKey, sourceFile, {
        maxBytes: input.maxBytes,
        signal: input.signal,
      });
    } catch (err) {
      if (err instanceof VideoDownloadError && err.code === "too_large") {
        return { ok: false, source: null, reason: "too_large", detail: err.message };
      }
      throw err;
    }
    if (!source) return null;
    report("download", 1);

    report("validate", 0);
    const checked = await validateVideoFile(sourceFile, input.declared, {
      limits: input.limits ?? DEFAULT_VIDEO_LIMITS,
      ffprobeBin: input.ffprobeBin,
      probeTimeoutMs: input.probeTimeoutMs ?? 60_000,
      signal: input.signal,
    });
    if (!checked.ok) return { ok: false, source, reason: checked.reason, detail: checked.detail };
    report("validate", 1);

    const { probe, demuxer } = checked;
    const ladder = renditionLadder(
      { ...probe, hasAudio: probe.audioCodec !== null },
      input.ladder ?? DEFAULT_LADDER,
    );
    let out: Awaited<ReturnType<typeof transcodeToHls>>;
    try {
      out = await transcodeToHls({
        input: sourceFile,
        demuxer,
        probe,
        ladder,
        deadlineMs: transcodeDeadlineMs(probe.durationS, ladder, input.budget ?? DEFAULT_TRANSCODE_BUDGET),
        signal: input.signal,
        onProgress: (f) => report("transcode", f),
        workDir: work,
        ffmpegBin: input.ffmpegBin,
        segmentType: input.segmentType,
      });
    } catch (err) {
      // ffprobe accepted the file, so ffmpeg failing on it is the content's doing (a broken
      // stream past the header); running out of time is the video's size or cost.
      if (err instanceof TranscodeError && (err.code === "failed" || err.code === "timeout")) {
        return {
          ok: false,
          source,
          reason: err.code === "timeout" ? "timeout" : "corrupt",
          detail: err.message,
        };
      }
      throw err;
    }
    try {
      // A re-run after a crash may find part of an earlier upload: start from nothing.
      await input.store.deletePrefix(hlsPrefix(input.imageId), input.signal);
      const hls = await uploadHlsTree(input.store, input.imageId, out.dir, {
        signal: input.signal,
        onUploaded: (done, total) => report("upload", done / total),
      });
      return { ok: true, source, probe, ladder, hls, posterKey: hlsKey(input.imageId, "poster.jpg") };
    } finally {
      await out.dispose();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
