import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transcodeDeadlineMs } from "../../src/domain/video.ts";
import { renditionLadder } from "../../src/domain/video-ladder.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { hlsPrefix, parseHlsKey } from "../../src/video/hls-keys.ts";
import { uploadHlsTree } from "../../src/video/hls-upload.ts";
import { TranscodeError, transcodeToHls } from "../../src/video/transcode.ts";
import { type VideoValidation, validateVideoFile } from "../../src/video/validate.ts";

const run = promisify(execFile);

/** ffmpeg and ffprobe (Debian's ffmpeg package); with CI=true their absence fails the suite. */
function ffmpegPresent(): boolean {
  try {
    execFileSync("ffmpeg", ["-version"], { stdio: "ignore" });
    execFileSync("ffprobe", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI === "true") throw new Error("ffmpeg is not installed: CI installs it (.ci/run)");
    return false;
  }
}
const HAVE_FFMPEG = ffmpegPresent();

let dir: string;
const file = (name: string) => path.join(dir, name);

/** A test video made here: testsrc2 pictures and a sine tone, a few seconds. */
async function makeVideo(
  name: string,
  seconds: number,
  codecArgs: string[],
  size = "640x360",
): Promise<string> {
  await run("ffmpeg", [
    ...["-hide_banner", "-v", "error", "-nostdin", "-y"],
    ...["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=30`],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
    ...["-t", String(seconds), "-threads", "2", ...codecArgs, file(name)],
  ]);
  return file(name);
}

async function ffprobeJson(target: string): Promise<{ streams: Record<string, unknown>[] }> {
  const { stdout } = await run("ffprobe", ["-v", "error", "-print_format", "json", "-show_streams", target]);
  return JSON.parse(stdout);
}

const H264_AAC = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"];
const VP9_OPUS = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"];

/** Processes whose command line names `needle` (a test's own temp dir): none once a run is stopped. */
async function processesNaming(needle: string): Promise<string[]> {
  const { stdout } = await run("ps", ["-eo", "args="]);
  return stdout.split("\n").filter((line) => line.includes(needle) && !line.startsWith("ps "));
}

function accepted(v: VideoValidation) {
  if (!v.ok) throw new Error(`rejected: ${v.reason}: ${v.detail}`);
  return v;
}

describe.skipIf(!HAVE_FFMPEG)("video probing and HLS transcoding (ffmpeg)", () => {
  let mp4: string;
  let webm: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgup-video-test-"));
    [mp4, webm] = await Promise.all([makeVideo("a.mp4", 5, H264_AAC), makeVideo("b.webm", 3, VP9_OPUS)]);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("probes an MP4 from its file and transcodes it into a ladder ffprobe reads, not upscaled", async () => {
    const v = accepted(await validateVideoFile(mp4, "video/mp4", { probeTimeoutMs: 60_000 }));
    expect(v.demuxer).toBe("mov");
    expect(v.probe).toMatchObject({
      width: 640,
      height: 360,
      fps: 30,
      videoCodec: "h264",
      audioCodec: "aac",
    });
    expect(v.probe.durationS).toBeCloseTo(5, 0);

    const ladder = renditionLadder({ ...v.probe, hasAudio: true });
    expect(ladder.map((r) => r.name)).toEqual(["360p", "240p"]);
    const progress: number[] = [];
    const out = await transcodeToHls({
      input: mp4,
      demuxer: v.demuxer,
      probe: v.probe,
      ladder,
      deadlineMs: transcodeDeadlineMs(v.probe.durationS, ladder),
      workDir: dir,
      onProgress: (f) => progress.push(f),
    });
    try {
      expect(progress.at(-1)).toBe(1);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));

      const master = await readFile(path.join(out.dir, "master.m3u8"), "utf8");
      expect(master).toContain("RESOLUTION=640x360");
      expect(master).toContain("RESOLUTION=426x240");
      for (const { rung, playlist } of out.renditions) {
        expect(master).toContain(playlist);
        const streams = (await ffprobeJson(path.join(out.dir, playlist))).streams;
        const video = streams.find((s) => s.codec_type === "video");
        expect(video).toMatchObject({ codec_name: "h264", width: rung.width, height: rung.height });
        expect(Number(video?.height)).toBeLessThanOrEqual(360);
        expect(streams.find((s) => s.codec_type === "audio")).toMatchObject({ codec_name: "aac" });
        const text = await readFile(path.join(out.dir, playlist), "utf8");
        expect(text).toContain("#EXT-X-PLAYLIST-TYPE:VOD");
        // fMP4: an init section, then segments of at most ~4 s.
        expect(text).toMatch(/#EXT-X-MAP:URI="init_\d\.mp4"/);
        const durations = [...text.matchAll(/#EXTINF:([\d.]+)/g)].map((m) => Number(m[1]));
        expect(durations.reduce((a, b) => a + b, 0)).toBeCloseTo(5, 0);
        expect(Math.max(...durations)).toBeLessThanOrEqual(4.5);
      }
      const poster = await readFile(path.join(out.dir, "poster.jpg"));
      expect([...poster.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
      const posterStreams = (await ffprobeJson(path.join(out.dir, "poster.jpg"))).streams;
      expect(posterStreams[0]).toMatchObject({ width: 640, height: 360 });

      // Into storage: the tree under the image's hls/ prefix, with its types, the master last.
      const root = await mkdtemp(path.join(dir, "store-"));
      const store = new LocalObjectStore({
        root,
        publicBaseUrl: "http://127.0.0.1:1",
        secret: randomBytes(32).toString("hex"),
        maxObjectBytes: 64 * 1024 * 1024,
      });
      const order: string[] = [];
      // The local store as it is, recording the order of its writes.
      const recording = new Proxy(store, {
        get(target, prop) {
          if (prop === "put") {
            return (...args: Parameters<ObjectStore["put"]>) => {
              order.push(args[0]);
              return target.put(...args);
            };
          }
          const value: unknown = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const id = "0192f4a1-7c3e-7abc-8def-0123456789ab";
      const files = (await readdir(out.dir, { recursive: true, withFileTypes: true })).filter((e) =>
        e.isFile(),
      );
      const uploaded = await uploadHlsTree(recording, id, out.dir);
      expect(uploaded.objects).toBe(files.length);
      expect(order).toHaveLength(files.length);
      expect(order.at(-1)).toBe(uploaded.masterKey);
      const rels = order.map((k) => parseHlsKey(k)?.file.kind);
      expect(rels.lastIndexOf("segment")).toBeLessThan(rels.indexOf("playlist"));
      expect((await store.head(uploaded.masterKey))?.contentType).toBe("application/vnd.apple.mpegurl");
      expect((await store.head(`${hlsPrefix(id)}360p/seg_00000.m4s`))?.contentType).toBe("video/mp4");
      expect((await store.head(`${hlsPrefix(id)}poster.jpg`))?.contentType).toBe("image/jpeg");
      // What was stored plays as it is: ffprobe reads the stored master and its renditions.
      const stored = await ffprobeJson(path.join(root, "objects", ...uploaded.masterKey.split("/")));
      expect(stored.streams.filter((s) => s.codec_type === "video").map((s) => s.height)).toEqual(
        expect.arrayContaining([360, 240]),
      );
      await store.close();
    } finally {
      await out.dispose();
    }
    await expect(stat(out.dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("accepts a VP9/Opus WebM and makes H.264/AAC renditions of it (MPEG-TS segments)", async () => {
    const v = accepted(await validateVideoFile(webm, "video/webm", { probeTimeoutMs: 60_000 }));
    expect(v).toMatchObject({ demuxer: "matroska", probe: { videoCodec: "vp9", audioCodec: "opus" } });
    const ladder = renditionLadder({ ...v.probe, hasAudio: true });
    const out = await transcodeToHls({
      input: webm,
      demuxer: v.demuxer,
      probe: v.probe,
      ladder,
      deadlineMs: transcodeDeadlineMs(v.probe.durationS, ladder),
      workDir: dir,
      segmentType: "mpegts",
    });
    try {
      for (const { rung, playlist } of out.renditions) {
        const streams = (await ffprobeJson(path.join(out.dir, playlist))).streams;
        expect(streams.find((s) => s.codec_type === "video")).toMatchObject({
          codec_name: "h264",
          height: rung.height,
        });
        expect(streams.find((s) => s.codec_type === "audio")).toMatchObject({ codec_name: "aac" });
      }
      const names = await readdir(path.join(out.dir, "240p"));
      expect(names.some((n) => n.endsWith(".ts"))).toBe(true);
    } finally {
      await out.dispose();
    }
  });

  it("turns a phone's rotated recording upright: portrait rungs, a portrait poster", async () => {
    const rotated = file("rotated.mp4");
    await run(
      "ffmpeg",
      ["-hide_banner", "-v", "error", "-y", "-i", mp4, "-t", "2", "-c", "copy"].concat([
        "-metadata:s:v:0",
        "rotate=90",
        rotated,
      ]),
    );
    const v = accepted(await validateVideoFile(rotated, "video/quicktime", { probeTimeoutMs: 60_000 }));
    expect(v.probe).toMatchObject({ width: 360, height: 640, rotation: 90 });
    const ladder = renditionLadder({ ...v.probe, hasAudio: true });
    const out = await transcodeToHls({
      input: rotated,
      demuxer: v.demuxer,
      probe: v.probe,
      ladder,
      deadlineMs: transcodeDeadlineMs(v.probe.durationS, ladder),
      workDir: dir,
    });
    try {
      const sizes = await Promise.all(
        [...out.renditions.map((r) => r.playlist), "poster.jpg"].map(async (rel) => {
          const video = (await ffprobeJson(path.join(out.dir, rel))).streams.find(
            (s) => s.codec_type === "video",
          );
          return [video?.width, video?.height];
        }),
      );
      expect(sizes).toEqual([
        [360, 640],
        [240, 426],
        [360, 640],
      ]);
    } finally {
      await out.dispose();
    }
  });

  it("transcodes a video without sound, and takes padding after the index for what it is", async () => {
    const silent = await makeVideo("silent.mp4", 2, [...H264_AAC, "-an"]);
    const padded = file("padded.mp4");
    await writeFile(padded, Buffer.concat([await readFile(silent), Buffer.alloc(100)]));
    const v = accepted(await validateVideoFile(padded, "video/mp4", { probeTimeoutMs: 60_000 }));
    expect(v.probe.audioCodec).toBeNull();
    const ladder = renditionLadder({ ...v.probe, hasAudio: false });
    const out = await transcodeToHls({
      input: padded,
      demuxer: v.demuxer,
      probe: v.probe,
      ladder,
      deadlineMs: transcodeDeadlineMs(v.probe.durationS, ladder),
      workDir: dir,
      onProgress: () => {
        throw new Error("a progress reporter that fails changes nothing");
      },
    });
    try {
      for (const { playlist } of out.renditions) {
        const streams = (await ffprobeJson(path.join(out.dir, playlist))).streams;
        expect(streams.map((s) => s.codec_type)).toEqual(["video"]);
      }
    } finally {
      await out.dispose();
    }
  });

  describe("stops ffmpeg and leaves no files", () => {
    let long: string;
    beforeAll(async () => {
      long = await makeVideo("long.mp4", 60, H264_AAC);
    });

    const start = async (
      workDir: string,
      deadlineMs: number,
      signal?: AbortSignal,
      onProgress?: () => void,
    ) => {
      const v = accepted(await validateVideoFile(long, "video/mp4", { probeTimeoutMs: 60_000 }));
      return transcodeToHls({
        input: long,
        demuxer: v.demuxer,
        probe: v.probe,
        ladder: renditionLadder({ ...v.probe, hasAudio: true }),
        deadlineMs,
        workDir,
        signal,
        onProgress,
      });
    };

    it("when aborted mid-transcode", async () => {
      const workDir = await mkdtemp(path.join(dir, "abort-"));
      const abort = new AbortController();
      const progress: number[] = [];
      const transcode = start(workDir, 600_000, abort.signal, () => {
        progress.push(1);
        abort.abort();
      });
      await expect(transcode).rejects.toMatchObject({ name: "TranscodeError", code: "aborted" });
      // ffmpeg was running (it had reported progress) and its temp dir is gone with everything in it.
      expect(progress.length).toBeGreaterThan(0);
      expect(await readdir(workDir)).toEqual([]);
      expect(await processesNaming(workDir)).toEqual([]);
    });

    it("when the deadline passes", async () => {
      const workDir = await mkdtemp(path.join(dir, "deadline-"));
      const err = await start(workDir, 500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TranscodeError);
      expect(err).toMatchObject({ code: "timeout" });
      expect(await readdir(workDir)).toEqual([]);
      expect(await processesNaming(workDir)).toEqual([]);
    });
  });
});
