import { describe, expect, it } from "vitest";
import { parseFfprobeJson, parseRate } from "./video-probe.ts";

const video = (extra: Record<string, unknown> = {}) => ({
  index: 0,
  codec_type: "video",
  codec_name: "h264",
  width: 1920,
  height: 1080,
  avg_frame_rate: "30000/1001",
  r_frame_rate: "30000/1001",
  disposition: { attached_pic: 0 },
  ...extra,
});
const audio = { index: 1, codec_type: "audio", codec_name: "aac" };
const format = { format_name: "mov,mp4,m4a,3gp,3g2,mj2", duration: "12.500000", bit_rate: "5000000" };

describe("parseFfprobeJson", () => {
  it("types what ffprobe prints", () => {
    const out = parseFfprobeJson({ streams: [video(), audio], format });
    expect(out).toEqual({
      ok: true,
      probe: {
        container: "mov,mp4,m4a,3gp,3g2,mj2",
        durationS: 12.5,
        width: 1920,
        height: 1080,
        fps: 30000 / 1001,
        rotation: 0,
        videoCodec: "h264",
        audioCodec: "aac",
        bitRate: 5_000_000,
        streams: [
          { index: 0, type: "video", codec: "h264", attachedPicture: false },
          { index: 1, type: "audio", codec: "aac", attachedPicture: false },
        ],
      },
    });
  });

  it("swaps the sides of a video a phone recorded rotated", () => {
    const rotated = video({ side_data_list: [{ side_data_type: "Display Matrix", rotation: -90 }] });
    const out = parseFfprobeJson({ streams: [rotated], format });
    expect(out).toMatchObject({
      ok: true,
      probe: { width: 1080, height: 1920, rotation: 270, audioCodec: null },
    });
    const legacy = parseFfprobeJson({ streams: [video({ tags: { rotate: "180" } })], format });
    expect(legacy).toMatchObject({ ok: true, probe: { width: 1920, height: 1080, rotation: 180 } });
  });

  it("takes the frame rate from r_frame_rate when the average is unknown", () => {
    const out = parseFfprobeJson({
      streams: [video({ avg_frame_rate: "0/0", r_frame_rate: "25/1" })],
      format,
    });
    expect(out).toMatchObject({ ok: true, probe: { fps: 25 } });
  });

  it("refuses audio only, or only a cover picture, as not a video", () => {
    expect(parseFfprobeJson({ streams: [audio], format })).toMatchObject({
      ok: false,
      reason: "not_a_video",
    });
    const cover = video({ codec_name: "mjpeg", disposition: { attached_pic: 1 } });
    expect(parseFfprobeJson({ streams: [cover, audio], format })).toMatchObject({
      ok: false,
      reason: "not_a_video",
    });
  });

  it.each([
    ["no duration", { streams: [video()], format: { format_name: "matroska,webm" } }],
    ["no dimensions", { streams: [video({ width: 0 })], format }],
    ["no frame rate", { streams: [video({ avg_frame_rate: "0/0", r_frame_rate: "0/0" })], format }],
    ["not ffprobe's shape", { streams: "x" }],
    ["null", null],
  ])("calls %s corrupt", (_, json) => {
    expect(parseFfprobeJson(json)).toMatchObject({ ok: false, reason: "corrupt" });
  });

  it("parses rates", () => {
    expect(parseRate("24/1")).toBe(24);
    expect(parseRate("0/0")).toBeNull();
    expect(parseRate("x")).toBeNull();
    expect(parseRate(undefined)).toBeNull();
  });
});
