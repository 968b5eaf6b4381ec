import { describe, expect, it } from "vitest";
import { renditionLadder } from "../domain/video-ladder.ts";
import { hlsArgs, posterArgs } from "./ffmpeg-args.ts";

const optionValue = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe("hlsArgs", () => {
  const base = {
    input: "/tmp/in.mp4",
    demuxer: "mov" as const,
    outDir: "/tmp/out",
    segmentSeconds: 4,
    segmentType: "fmp4" as const,
    threads: 2,
    preset: "veryfast",
  };

  it("maps one video (and audio) stream per rung into one master", () => {
    const ladder = renditionLadder({ width: 1280, height: 720, fps: 30, hasAudio: true });
    const args = hlsArgs({ ...base, sourceFps: 30, hasAudio: true, ladder });
    expect(optionValue(args, "-var_stream_map")).toBe(
      "v:0,a:0,name:720p v:1,a:1,name:480p v:2,a:2,name:240p",
    );
    expect(optionValue(args, "-filter_complex")).toBe(
      "[0:v:0]split=3[s0][s1][s2];" +
        "[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[v0];" +
        "[s1]scale=854:480:flags=bicubic,setsar=1,format=yuv420p[v1];" +
        "[s2]scale=426:240:flags=bicubic,setsar=1,format=yuv420p[v2]",
    );
    expect(args.filter((a) => a === "0:a:0")).toHaveLength(3);
    expect(optionValue(args, "-b:v:1")).toBe(`${ladder[1]?.videoKbps}k`);
    expect(optionValue(args, "-hls_segment_filename")).toBe("/tmp/out/%v/seg_%05d.m4s");
    expect(args.at(-1)).toBe("/tmp/out/%v/index.m3u8");
    // The demuxer is forced and only local files may be opened.
    expect(args.slice(args.indexOf("-i") - 4, args.indexOf("-i") + 2)).toEqual([
      "-protocol_whitelist",
      "file",
      "-f",
      "mov",
      "-i",
      "file:/tmp/in.mp4",
    ]);
    expect(optionValue(args, "-map_metadata")).toBe("-1");
    // Two decoder threads (before -i), one per encoder (after it): three encoders run side by side.
    expect(args.filter((_, i) => args[i - 1] === "-threads")).toEqual(["2", "1"]);
  });

  it("leaves audio out when the source has none, drops frames above the cap, writes TS on request", () => {
    const ladder = renditionLadder({ width: 640, height: 360, fps: 120, hasAudio: false });
    const args = hlsArgs({ ...base, segmentType: "mpegts", sourceFps: 120, hasAudio: false, ladder });
    expect(optionValue(args, "-var_stream_map")).toBe("v:0,name:360p v:1,name:240p");
    expect(args).not.toContain("0:a:0");
    expect(args).not.toContain("-c:a");
    expect(optionValue(args, "-filter_complex")).toContain(",fps=60,");
    expect(optionValue(args, "-hls_segment_filename")).toBe("/tmp/out/%v/seg_%05d.ts");
    expect(args).not.toContain("-hls_fmp4_init_filename");
  });
});

it("seeks the poster in the demuxer and writes one frame", () => {
  const args = posterArgs({
    input: "/tmp/a.webm",
    demuxer: "matroska",
    atS: 1.23456,
    width: 640,
    height: 360,
    output: "/tmp/o/poster.jpg",
    threads: 2,
  });
  expect(args.slice(0, 2)).toEqual(["-ss", "1.235"]);
  expect(args.indexOf("-ss")).toBeLessThan(args.indexOf("-i"));
  expect(optionValue(args, "-frames:v")).toBe("1");
  expect(args.at(-1)).toBe("/tmp/o/poster.jpg");
});
