import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalObjectStore } from "../../src/storage/local.ts";
import { downloadToFile, VideoDownloadError } from "../../src/video/download.ts";

describe("streaming a stored video to a local file", () => {
  let root: string;
  let work: string;
  let store: LocalObjectStore;
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const key = "abcd/upload-under-test";

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-video-download-"));
    work = path.join(root, "work");
    await mkdir(work);
    store = new LocalObjectStore({
      root: path.join(root, "store"),
      publicBaseUrl: "http://127.0.0.1:1",
      secret: randomBytes(32).toString("hex"),
      maxObjectBytes: 64 * 1024 * 1024,
    });
    await store.put(key, body, { contentType: "video/mp4", contentLength: body.length });
  });
  afterAll(async () => {
    await store?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("writes the bytes, their SHA-256 and the version it read", async () => {
    const file = path.join(work, "a.mp4");
    const got = await downloadToFile(store, key, file, { maxBytes: body.length });
    expect(got).toMatchObject({ bytes: body.length, head: { key, size: body.length } });
    expect(got?.sha256).toBe(createHash("sha256").update(body).digest("hex"));
    expect((await readFile(file)).equals(body)).toBe(true);
    await rm(file);
  });

  it("is null for a missing object", async () => {
    expect(await downloadToFile(store, "abcd/none", path.join(work, "none"), { maxBytes: 10 })).toBeNull();
    expect(await readdir(work)).toEqual([]);
  });

  it("refuses an object over the limit and leaves no file", async () => {
    const err = await downloadToFile(store, key, path.join(work, "big.mp4"), { maxBytes: 1024 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(VideoDownloadError);
    expect(err).toMatchObject({ code: "too_large" });
    expect(await readdir(work)).toEqual([]);
  });

  it("stops on abort mid-stream and leaves no file", async () => {
    const abort = new AbortController();
    const slowStore = new Proxy(store, {
      get(target, prop) {
        if (prop !== "getStream") {
          const value: unknown = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        }
        return async (...args: Parameters<LocalObjectStore["getStream"]>) => {
          const got = await target.getStream(...args);
          // Abort once the first chunk has gone by: the copy is under way.
          got?.body.once("data", () => abort.abort());
          return got;
        };
      },
    });
    const file = path.join(work, "aborted.mp4");
    await expect(
      downloadToFile(slowStore, key, file, { maxBytes: body.length, signal: abort.signal }),
    ).rejects.toMatchObject({
      name: "AbortError",
    });
    expect(await readdir(work)).toEqual([]);
  });

  it("never writes over nor removes a file that is already there", async () => {
    const file = path.join(work, "taken.mp4");
    await writeFile(file, "someone else's");
    await expect(downloadToFile(store, key, file, { maxBytes: body.length })).rejects.toMatchObject({
      code: "EEXIST",
    });
    expect(await readFile(file, "utf8")).toBe("someone else's");
    await rm(file);
  });
});
