import { access, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { VideoDemuxer } from "../domain/video.ts";
import type { Rung } from "../domain/video-ladder.ts";
import type { VideoProbe } from "../domain/video-probe.ts";
import {
  hlsArgs,
  MASTER_PLAYLIST,
  POSTER_FILE,
  posterArgs,
  RENDITION_PLAYLIST,
  type SegmentType,
} from "./ffmpeg-args.ts";
import { lastLines, runTool } from "./run-tool.ts";

export interface TranscodeRequest {
  /** The validated source on local disk. */
  input: string;
  demuxer: VideoDemuxer;
  probe: VideoProbe;
  ladder: readonly Rung[];
  /** The whole job's hard deadline (transcodeDeadlineMs in domain/video.ts). */
  deadlineMs: number;
  signal?: AbortSignal;
  /** 0..1 of the source's duration encoded; called at most every half second (ffmpeg's period). */
  onProgress?: (fraction: number) => void;
  /** Where the temporary output directory is made (default: the OS temp dir). */
  workDir?: string;
  ffmpegBin?: string;
  segmentSeconds?: number;
  segmentType?: SegmentType;
  threads?: number;
  preset?: string;
}

export interface TranscodeOutput {
  /** A temp dir: master.m3u8, <rung>/index.m3u8 (+ init.mp4 and segments), poster.jpg. */
  dir: string;
  segmentType: SegmentType;
  renditions: { rung: Rung; playlist: string }[];
  /** Removes the dir; the caller calls it after uploading (or on its own failure). */
  dispose(): Promise<void>;
}

export class TranscodeError extends Error {
  constructor(
    readonly code: "timeout" | "aborted" | "failed" | "not_installed",
    detail: string,
  ) {
    super(detail);
    this.name = "TranscodeError";
  }
}

/**
 * The HLS ladder and the poster of one video, made by ffmpeg into a fresh temp dir. One ffmpeg
 * process encodes every rendition (the source is decoded once). On any failure, the deadline or
 * the abort, ffmpeg is killed, waited for, and the dir removed: no half-written rendition is left
 * for anyone to upload.
 */
export async function transcodeToHls(req: TranscodeRequest): Promise<TranscodeOutput> {
  const started = Date.now();
  const remaining = () => req.deadlineMs - (Date.now() - started);
  const bin = req.ffmpegBin ?? "ffmpeg";
  const segmentType = req.segmentType ?? "fmp4";
  const threads = req.threads ?? 2;
  if (req.ladder.length === 0) throw new TranscodeError("failed", "the ladder is empty");
  if (req.signal?.aborted) throw new TranscodeError("aborted", "aborted before start");
  const dir = await mkdtemp(path.join(req.workDir ?? tmpdir(), "imgup-hls-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    // ffmpeg's hls muxer does not create the %v directories itself.
    for (const r of req.ladder) await mkdir(path.join(dir, r.name));
    const hasAudio = req.probe.audioCodec !== null;
    const totalUs = req.probe.durationS * 1e6;
    let outUs = 0;
    const hls = await runTool({
      bin,
      args: hlsArgs({
        input: req.input,
        demuxer: req.demuxer,
        sourceFps: req.probe.fps,
        hasAudio,
        ladder: req.ladder,
        outDir: dir,
        segmentSeconds: req.segmentSeconds ?? 4,
        segmentType,
        threads,
        preset: req.preset ?? "veryfast",
      }),
      timeoutMs: remaining(),
      signal: req.signal,
      onStdoutLine: (line) => {
        const eq = line.indexOf("=");
        if (eq < 0) return;
        const key = line.slice(0, eq);
        const value = line.slice(eq + 1);
        if (key === "out_time_us" && /^\d+$/.test(value)) outUs = Number(value);
        // Each block of -progress output ends with progress=continue|end.
        if (key === "progress" && req.onProgress) {
          try {
            req.onProgress(value === "end" ? 1 : Math.min(1, totalUs > 0 ? outUs / totalUs : 0));
          } catch {
            // Progress is advisory: a reporter that throws (a database blip) must not take down
            // the process from inside a stream handler, nor the transcode.
          }
        }
      },
    });
    check(hls, "ffmpeg (HLS)", req.deadlineMs);

    const top = req.ladder[0] as Rung;
    const poster = path.join(dir, POSTER_FILE);
    // ~10% in: past a fade from black, early enough to exist in a short clip. Some files cannot
    // seek there (a broken index): the first frame is better than none.
    for (const atS of [req.probe.durationS * 0.1, 0]) {
      if (remaining() <= 0) throw new TranscodeError("timeout", `ran past ${req.deadlineMs} ms`);
      const run = await runTool({
        bin,
        args: posterArgs({
          input: req.input,
          demuxer: req.demuxer,
          atS,
          width: top.width,
          height: top.height,
          output: poster,
          threads,
        }),
        timeoutMs: remaining(),
        signal: req.signal,
      });
      check(run, "ffmpeg (poster)", req.deadlineMs);
      if (await exists(poster)) break;
    }
    if (!(await exists(poster))) throw new TranscodeError("failed", "ffmpeg wrote no poster frame");

    const renditions = req.ladder.map((rung) => ({ rung, playlist: `${rung.name}/${RENDITION_PLAYLIST}` }));
    for (const r of renditions) {
      const text = await readFile(path.join(dir, r.playlist), "utf8").catch(() => "");
      // A VOD playlist ffmpeg finished ends with ENDLIST; anything else is not servable.
      if (!text.includes("#EXT-X-ENDLIST")) throw new TranscodeError("failed", `${r.playlist} is incomplete`);
    }
    if (!(await exists(path.join(dir, MASTER_PLAYLIST)))) {
      throw new TranscodeError("failed", "ffmpeg wrote no master playlist");
    }
    return { dir, segmentType, renditions, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

function check(result: Awaited<ReturnType<typeof runTool>>, what: string, deadlineMs: number): void {
  switch (result.outcome) {
    case "exited":
      if (result.code === 0) return;
      throw new TranscodeError("failed", `${what}: ${lastLines(result.stderr) || `exit ${result.code}`}`);
    case "timeout":
      throw new TranscodeError("timeout", `${what} ran past the deadline of ${deadlineMs} ms`);
    case "aborted":
      throw new TranscodeError("aborted", `${what} aborted`);
    case "not_installed":
      throw new TranscodeError("not_installed", `${what}: not found (install Debian's ffmpeg package)`);
    case "output_too_large":
      throw new TranscodeError("failed", `${what}: its progress output was not what ffmpeg prints`);
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
