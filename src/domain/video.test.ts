import { describe, expect, it } from "vitest";
import {
  checkMagic,
  checkProbe,
  DEFAULT_TRANSCODE_BUDGET,
  DEFAULT_VIDEO_LIMITS,
  isVideoContentType,
  transcodeDeadlineMs,
} from "./video.ts";
import type { VideoProbe } from "./video-probe.ts";

const MP4 = { family: "isobmff", brand: "isom", quicktime: false } as const;
const MOV = { family: "isobmff", brand: "qt  ", quicktime: true } as const;
const WEBM = { family: "matroska", docType: "webm" } as const;
const MKV = { family: "matroska", docType: "matroska" } as const;

const probe = (p: Partial<VideoProbe> = {}): VideoProbe => ({
  container: "mov,mp4,m4a,3gp,3g2,mj2",
  durationS: 10,
  width: 1280,
  height: 720,
  fps: 30,
  rotation: 0,
  videoCodec: "h264",
  audioCodec: "aac",
  bitRate: null,
  streams: [],
  ...p,
});

describe("checkMagic", () => {
  it("accepts MP4 and QuickTime bytes for either declared type (one format, labelled by extension)", () => {
    for (const declared of ["video/mp4", "video/quicktime"] as const) {
      expect(checkMagic(declared, MP4)).toEqual({ ok: true, demuxer: "mov" });
      expect(checkMagic(declared, MOV)).toEqual({ ok: true, demuxer: "mov" });
    }
    expect(checkMagic("video/webm", WEBM)).toEqual({ ok: true, demuxer: "matroska" });
  });

  it("refuses bytes of another container than declared", () => {
    expect(checkMagic("video/mp4", WEBM)).toMatchObject({ ok: false, reason: "type_mismatch" });
    expect(checkMagic("video/webm", MP4)).toMatchObject({ ok: false, reason: "type_mismatch" });
    expect(checkMagic("video/webm", MKV)).toMatchObject({ ok: false, reason: "type_mismatch" });
  });

  it("refuses what is no video container at all", () => {
    expect(checkMagic("video/mp4", null)).toMatchObject({ ok: false, reason: "not_a_video" });
  });
});

describe("checkProbe", () => {
  it("accepts a video within the limits", () => {
    expect(checkProbe("video/mp4", "mov", probe())).toEqual({ ok: true, demuxer: "mov" });
    const webm = probe({ container: "matroska,webm", videoCodec: "vp9", audioCodec: "opus" });
    expect(checkProbe("video/webm", "matroska", webm)).toEqual({ ok: true, demuxer: "matroska" });
    expect(checkProbe("video/mp4", "mov", probe({ audioCodec: null }))).toMatchObject({ ok: true });
  });

  it.each([
    ["another container than the magic", probe({ container: "matroska,webm" }), "type_mismatch"],
    ["a codec off the list", probe({ videoCodec: "rawvideo" }), "unsupported_codec"],
    ["an audio codec off the list", probe({ audioCodec: "pcm_f64le" }), "unsupported_codec"],
    ["a video too long", probe({ durationS: DEFAULT_VIDEO_LIMITS.maxDurationS + 1 }), "too_long"],
    ["a video too wide", probe({ width: 8192, height: 4320 }), "dimensions_exceeded"],
    ["too many pixels", probe({ width: 4096, height: 4096 }), "dimensions_exceeded"],
    ["a sliver", probe({ width: 1280, height: 8 }), "dimensions_exceeded"],
    ["a frame rate too high", probe({ fps: 240 }), "frame_rate_exceeded"],
    [
      "a file with a hundred streams",
      probe({
        streams: Array.from({ length: 100 }, (_, i) => ({
          index: i,
          type: "data",
          codec: null,
          attachedPicture: false,
        })),
      }),
      "too_complex",
    ],
  ] as const)("refuses %s", (_, p, reason) => {
    expect(checkProbe("video/mp4", "mov", p)).toMatchObject({ ok: false, reason });
  });

  it("holds WebM to its own codecs", () => {
    const h264InWebm = probe({ container: "matroska,webm", videoCodec: "h264", audioCodec: "opus" });
    expect(checkProbe("video/webm", "matroska", h264InWebm)).toMatchObject({ reason: "unsupported_codec" });
    const aacInWebm = probe({ container: "matroska,webm", videoCodec: "vp9", audioCodec: "aac" });
    expect(checkProbe("video/webm", "matroska", aacInWebm)).toMatchObject({ reason: "unsupported_codec" });
  });

  it("follows the limits it is given", () => {
    const strict = { ...DEFAULT_VIDEO_LIMITS, maxDurationS: 5 };
    expect(checkProbe("video/mp4", "mov", probe({ durationS: 6 }), strict)).toMatchObject({
      reason: "too_long",
    });
  });
});

describe("transcodeDeadlineMs", () => {
  const p1080 = [{ width: 1920, height: 1080, fps: 30 }];
  it("grows with the duration and the pixels encoded, within the cap", () => {
    const short = transcodeDeadlineMs(10, p1080);
    const long = transcodeDeadlineMs(100, p1080);
    expect(short).toBe(DEFAULT_TRANSCODE_BUDGET.baseMs + 10 * DEFAULT_TRANSCODE_BUDGET.msPerSecondAt1080p);
    expect(long).toBeGreaterThan(short);
    const ladder = [...p1080, { width: 1280, height: 720, fps: 30 }];
    expect(transcodeDeadlineMs(100, ladder)).toBeGreaterThan(long);
    expect(transcodeDeadlineMs(1e9, p1080)).toBe(DEFAULT_TRANSCODE_BUDGET.maxMs);
  });

  it("allows a small ladder a quarter of a 1080p one at least (decoding costs too)", () => {
    const tiny = [{ width: 160, height: 90, fps: 30 }];
    expect(transcodeDeadlineMs(100, tiny)).toBe(
      DEFAULT_TRANSCODE_BUDGET.baseMs + 100 * DEFAULT_TRANSCODE_BUDGET.msPerSecondAt1080p * 0.25,
    );
  });
});

it("knows the video content types", () => {
  expect(isVideoContentType("video/webm")).toBe(true);
  expect(isVideoContentType("video/x-msvideo")).toBe(false);
});
