import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transcodeDeadlineMs } from "../../src/domain/video.ts";
import { renditionLadder } from "../../src/domain/video-ladder.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { probeVideoFile, VideoToolError } from "../../src/video/ffprobe.ts";
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

  describe("refuses what is not a valid video of its declared type", () => {
    it("a zip and a text file renamed .mp4", async () => {
      await writeFile(file("notes.txt"), "just some text, renamed to look like a video\n".repeat(50));
      await run("zip", ["-q", "-j", file("archive.mp4"), file("notes.txt")]);
      for (const name of ["archive.mp4", "notes.txt"]) {
        const v = await validateVideoFile(file(name), "video/mp4", { probeTimeoutMs: 60_000 });
        expect(v).toMatchObject({ ok: false, reason: "not_a_video" });
      }
    });

    it("an MP4 cut short, whether its index comes first or last", async () => {
      const faststart = await makeVideo("faststart.mp4", 3, [...H264_AAC, "-movflags", "+faststart"]);
      for (const source of [mp4, faststart]) {
        const cut = file(`cut-${path.basename(source)}`);
        await writeFile(cut, await readFile(source));
        await truncate(cut, Math.floor((await stat(cut)).size * 0.6));
        const v = await validateVideoFile(cut, "video/mp4", { probeTimeoutMs: 60_000 });
        expect(v).toMatchObject({ ok: false, reason: "corrupt" });
        expect(v.ok || v.detail).toMatch(/truncated/);
      }
    });

    it("a WebM cut short, and container types that contradict the declared one", async () => {
      const cut = file("cut.webm");
      await writeFile(cut, await readFile(webm));
      await truncate(cut, Math.floor((await stat(cut)).size * 0.5));
      expect(await validateVideoFile(cut, "video/webm", { probeTimeoutMs: 60_000 })).toMatchObject({
        ok: false,
        reason: "corrupt",
      });
      expect(await validateVideoFile(mp4, "video/webm", { probeTimeoutMs: 60_000 })).toMatchObject({
        ok: false,
        reason: "type_mismatch",
      });
      expect(await validateVideoFile(webm, "video/mp4", { probeTimeoutMs: 60_000 })).toMatchObject({
        ok: false,
        reason: "type_mismatch",
      });
    });

    it("an MP4 with sound and no picture", async () => {
      const m4a = file("sound.mp4");
      await run("ffmpeg", [
        ...["-hide_banner", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=frequency=440"],
        ...["-t", "2", "-c:a", "aac", m4a],
      ]);
      expect(await validateVideoFile(m4a, "video/mp4", { probeTimeoutMs: 60_000 })).toMatchObject({
        ok: false,
        reason: "not_a_video",
      });
    });
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

    it("when ffprobe hangs, prints too much or is missing", async () => {
      // 1 ms: ffprobe cannot even start in that time, so the deadline always strikes first.
      expect(await probeVideoFile(long, { timeoutMs: 1, demuxer: "mov" })).toMatchObject({
        ok: false,
        reason: "timeout",
      });
      expect(
        await probeVideoFile(long, { timeoutMs: 60_000, demuxer: "mov", maxOutputBytes: 100 }),
      ).toMatchObject({
        ok: false,
        reason: "too_complex",
      });
      const missing = await probeVideoFile(long, {
        timeoutMs: 60_000,
        demuxer: "mov",
        bin: path.join(dir, "none"),
      }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(VideoToolError);
      expect(missing).toMatchObject({ code: "not_installed" });
    });
  });
});

describe("uploading an HLS tree", () => {
  let root: string;
  let store: LocalObjectStore;
  const id = "0192f4a1-7c3e-7abc-8def-0123456789ab";

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-hls-upload-"));
    store = new LocalObjectStore({
      root: path.join(root, "store"),
      publicBaseUrl: "http://127.0.0.1:1",
      secret: randomBytes(32).toString("hex"),
      maxObjectBytes: 1024 * 1024,
    });
  });
  afterAll(async () => {
    await store?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function tree(name: string, extra: Record<string, string> = {}): Promise<string> {
    const files: Record<string, string> = {
      "master.m3u8": "#EXTM3U\n",
      "poster.jpg": "jpeg",
      "240p/index.m3u8": "#EXTM3U\n",
      "240p/init_0.mp4": "init",
      "240p/seg_00000.m4s": "a",
      "240p/seg_00001.m4s": "b",
      ...extra,
    };
    const base = path.join(root, name);
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(base, rel)), { recursive: true });
      await writeFile(path.join(base, rel), body);
    }
    return base;
  }

  const stored = async () => (await store.list(hlsPrefix(id))).objects.map((o) => o.key);

  it("removes what it stored when a write fails, so no playlist points at a missing segment", async () => {
    let puts = 0;
    const failing = new Proxy(store, {
      get(target, prop) {
        if (prop === "put") {
          return (...args: Parameters<ObjectStore["put"]>) => {
            // The fourth write (a rendition playlist, after init and segments) fails.
            if (++puts === 4) return Promise.reject(new Error("storage unavailable"));
            return target.put(...args);
          };
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await expect(uploadHlsTree(failing, id, await tree("failing"), { concurrency: 1 })).rejects.toThrow(
      "storage unavailable",
    );
    expect(puts).toBe(4);
    expect(await stored()).toEqual([]);
  });

  it("refuses a tree holding a file ffmpeg does not write, before storing anything", async () => {
    const dirWithExtra = await tree("extra", { "notes.txt": "x" });
    await expect(uploadHlsTree(store, id, dirWithExtra)).rejects.toThrow(/unexpected file/);
    expect(await stored()).toEqual([]);
  });
});
