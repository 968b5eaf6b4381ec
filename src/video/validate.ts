import { open } from "node:fs/promises";
import {
  checkMagic,
  checkProbe,
  DEFAULT_VIDEO_LIMITS,
  type VideoContentType,
  type VideoDemuxer,
  type VideoLimits,
} from "../domain/video.ts";
import type { VideoProbe, VideoRejectReason } from "../domain/video-probe.ts";
import { sniffVideo, VIDEO_SNIFF_BYTES } from "../domain/video-sniff.ts";
import { checkContainer } from "./container-check.ts";
import { probeVideoFile } from "./ffprobe.ts";

export type VideoValidation =
  | { ok: true; probe: VideoProbe; demuxer: VideoDemuxer }
  | { ok: false; reason: VideoRejectReason; detail: string };

export interface ValidateVideoOptions {
  limits?: VideoLimits;
  ffprobeBin?: string;
  probeTimeoutMs: number;
  signal?: AbortSignal;
}

/**
 * The worker's whole check of a video on disk, cheapest first: magic bytes against the declared
 * type (a zip or a text file stops here, before ffprobe parses anything), the container's declared
 * sizes against the file (truncation), then ffprobe with the demuxer forced, then the policy.
 * Throws VideoToolError only when ffprobe is missing or the caller aborted.
 */
export async function validateVideoFile(
  path: string,
  declared: VideoContentType,
  opts: ValidateVideoOptions,
): Promise<VideoValidation> {
  const head = new Uint8Array(VIDEO_SNIFF_BYTES);
  const file = await open(path, "r");
  let bytesRead: number;
  try {
    ({ bytesRead } = await file.read(head, 0, head.length, 0));
  } finally {
    await file.close();
  }
  const magic = checkMagic(declared, sniffVideo(head.subarray(0, bytesRead)));
  if (!magic.ok) return magic;
  const structure = await checkContainer(path, magic.demuxer);
  if (!structure.ok) return structure;
  const probed = await probeVideoFile(path, {
    bin: opts.ffprobeBin,
    timeoutMs: opts.probeTimeoutMs,
    demuxer: magic.demuxer,
    signal: opts.signal,
  });
  if (!probed.ok) return probed;
  const verdict = checkProbe(declared, magic.demuxer, probed.probe, opts.limits ?? DEFAULT_VIDEO_LIMITS);
  if (!verdict.ok) return verdict;
  return { ok: true, probe: probed.probe, demuxer: magic.demuxer };
}
