import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeVideoFile, VideoToolError } from "../../src/video/ffprobe.ts";
import { validateVideoFile } from "../../src/video/validate.ts";

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

const H264_AAC = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"];
const VP9_OPUS = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"];

describe.skipIf(!HAVE_FFMPEG)(
  "video validation refuses what is not a valid video of its declared type",
  () => {
    let mp4: string;
    let webm: string;

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "imgup-video-validation-"));
      [mp4, webm] = await Promise.all([makeVideo("a.mp4", 3, H264_AAC), makeVideo("b.webm", 2, VP9_OPUS)]);
    });
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

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

    it("refuses when ffprobe runs late or prints too much, and throws when it is missing", async () => {
      // 1 ms: ffprobe cannot even start in that time, so the deadline always strikes first.
      expect(await probeVideoFile(mp4, { timeoutMs: 1, demuxer: "mov" })).toMatchObject({
        ok: false,
        reason: "timeout",
      });
      expect(
        await probeVideoFile(mp4, { timeoutMs: 60_000, demuxer: "mov", maxOutputBytes: 100 }),
      ).toMatchObject({
        ok: false,
        reason: "too_complex",
      });
      const missing = await probeVideoFile(mp4, {
        timeoutMs: 60_000,
        demuxer: "mov",
        bin: path.join(dir, "none"),
      }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(VideoToolError);
      expect(missing).toMatchObject({ code: "not_installed" });
    });
  },
);
