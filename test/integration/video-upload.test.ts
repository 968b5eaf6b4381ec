import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalObjectStore } from "../../src/storage/local.ts";
import type { ObjectStore } from "../../src/storage/object-store.ts";
import { hlsPrefix } from "../../src/video/hls-keys.ts";
import { uploadHlsTree } from "../../src/video/hls-upload.ts";

// The order and the cleanup of an upload; a real tree (made by ffmpeg) is uploaded and read back
// by ffprobe in video-transcode.test.ts.
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
