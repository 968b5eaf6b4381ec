import { execFile, execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadKey } from "../../src/domain/keys.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import { hlsPrefix } from "../../src/video/hls-keys.ts";
import { runVideoPipeline, type VideoStage } from "../../src/video/pipeline.ts";

const run = promisify(execFile);

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

describe.skipIf(!ffmpegPresent())("a stored video to a stored HLS tree", () => {
  let root: string;
  let work: string;
  let store: LocalObjectStore;
  let mp4: Buffer;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-video-pipeline-"));
    work = path.join(root, "work");
    await mkdir(work);
    store = new LocalObjectStore({
      root: path.join(root, "store"),
      publicBaseUrl: "http://127.0.0.1:1",
      secret: randomBytes(32).toString("hex"),
      maxObjectBytes: 256 * 1024 * 1024,
    });
    const file = path.join(root, "in.mp4");
    await run("ffmpeg", [
      ...["-hide_banner", "-v", "error", "-nostdin", "-y"],
      ...["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine"],
      ...["-t", "8", "-threads", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
      ...["-c:a", "aac", file],
    ]);
    mp4 = await readFile(file);
  });
  afterAll(async () => {
    await store?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function stage(body: Buffer, contentType: string): Promise<string> {
    const id = randomUUID();
    await store.put(uploadKey(id), body, { contentType, contentLength: body.length });
    return id;
  }
  const hlsKeys = async (id: string) => (await store.list(hlsPrefix(id))).objects.map((o) => o.key);

  it("makes the renditions and the poster in storage and leaves no local file", async () => {
    const id = await stage(mp4, "video/mp4");
    const stages: VideoStage[] = [];
    const result = await runVideoPipeline({
      store,
      imageId: id,
      sourceKey: uploadKey(id),
      declared: "video/mp4",
      workDir: work,
      maxBytes: mp4.length,
      onProgress: (s) => {
        if (stages.at(-1) !== s) stages.push(s);
      },
    });
    if (!result?.ok) throw new Error(`not ok: ${JSON.stringify(result)}`);
    expect(stages).toEqual(["download", "validate", "transcode", "upload"]);
    expect(result.ladder.map((r) => r.name)).toEqual(["360p", "240p"]);
    expect(result.source.bytes).toBe(mp4.length);
    const keys = await hlsKeys(id);
    expect(keys).toContain(result.hls.masterKey);
    expect(keys).toContain(result.posterKey);
    expect(keys.filter((k) => k.endsWith("/index.m3u8"))).toHaveLength(2);
    expect(keys).toHaveLength(result.hls.objects);
    expect(await readdir(work)).toEqual([]);
  });

  it("rejects a zip declared as a video with its reason, and stores nothing", async () => {
    const zip = Buffer.concat([Buffer.from("PK\u0003\u0004", "latin1"), randomBytes(4000)]);
    const id = await stage(zip, "video/mp4");
    const result = await runVideoPipeline({
      store,
      imageId: id,
      sourceKey: uploadKey(id),
      declared: "video/mp4",
      workDir: work,
      maxBytes: 1024 * 1024,
    });
    expect(result).toMatchObject({ ok: false, reason: "not_a_video" });
    expect(await hlsKeys(id)).toEqual([]);
    expect(await readdir(work)).toEqual([]);
  });

  it("rejects a source over the size limit without reading it all", async () => {
    const id = await stage(mp4, "video/mp4");
    const args = {
      store,
      imageId: id,
      sourceKey: uploadKey(id),
      declared: "video/mp4",
      workDir: work,
    } as const;
    expect(await runVideoPipeline({ ...args, maxBytes: mp4.length - 1 })).toMatchObject({
      ok: false,
      source: null,
      reason: "too_large",
    });
    expect(await readdir(work)).toEqual([]);
  });

  it("is null when the source is gone", async () => {
    const id = randomUUID();
    const args = {
      store,
      imageId: id,
      sourceKey: uploadKey(id),
      declared: "video/mp4",
      workDir: work,
    } as const;
    expect(await runVideoPipeline({ ...args, maxBytes: 1 })).toBeNull();
    expect(await readdir(work)).toEqual([]);
  });

  it("stops mid-transcode when aborted (the video was deleted) and leaves nothing anywhere", async () => {
    const id = await stage(mp4, "video/mp4");
    const abort = new AbortController();
    const result = runVideoPipeline({
      store,
      imageId: id,
      sourceKey: uploadKey(id),
      declared: "video/mp4",
      workDir: work,
      maxBytes: mp4.length,
      signal: abort.signal,
      onProgress: (s) => {
        if (s === "transcode") abort.abort();
      },
    });
    await expect(result).rejects.toMatchObject({ code: "aborted" });
    expect(await hlsKeys(id)).toEqual([]);
    expect(await readdir(work)).toEqual([]);
  });
});
