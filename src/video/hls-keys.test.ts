import { describe, expect, it } from "vitest";
import { imagePrefix } from "../domain/keys.ts";
import { hlsContentType, hlsKey, hlsMasterKey, parseHlsKey, parseHlsPath, uploadRank } from "./hls-keys.ts";

const ID = "0192f4a1-7c3e-7abc-8def-0123456789ab";

describe("HLS keys", () => {
  it("puts the tree under the image's prefix", () => {
    expect(hlsMasterKey(ID)).toBe(`${imagePrefix(ID)}hls/master.m3u8`);
    expect(hlsKey(ID, "720p/seg_00003.m4s")).toBe(`${imagePrefix(ID)}hls/720p/seg_00003.m4s`);
    expect(hlsKey(ID, "poster.jpg")).toBe(`${imagePrefix(ID)}hls/poster.jpg`);
  });

  it.each([
    ["master.m3u8", { kind: "master" }],
    ["poster.jpg", { kind: "poster" }],
    ["480p/index.m3u8", { kind: "playlist", rung: "480p" }],
    ["480p/init_2.mp4", { kind: "init", rung: "480p" }],
    ["480p/init.mp4", { kind: "init", rung: "480p" }],
    ["480p/seg_00012.m4s", { kind: "segment", rung: "480p", index: 12, ext: "m4s" }],
    ["240p/seg_00000.ts", { kind: "segment", rung: "240p", index: 0, ext: "ts" }],
  ])("parses %s", (rel, file) => {
    expect(parseHlsPath(rel)).toEqual(file);
  });

  it.each([
    "../original",
    "720p/../../original",
    "720p/seg_1.m4s",
    "720p/seg_00001.mp4",
    "abc/index.m3u8",
    "720p/sub/index.m3u8",
    "index.m3u8",
    "",
    "master.m3u8/",
  ])("refuses %j", (rel) => {
    expect(parseHlsPath(rel)).toBeNull();
    expect(() => hlsKey(ID, rel)).toThrow();
  });

  it("parses its keys back, and no forged prefix", () => {
    expect(parseHlsKey(hlsKey(ID, "720p/index.m3u8"))).toEqual({
      imageId: ID,
      rel: "720p/index.m3u8",
      file: { kind: "playlist", rung: "720p" },
    });
    expect(parseHlsKey(`0000/${ID}/hls/master.m3u8`.replace(/^0000/, "ffff"))).toBeNull();
    expect(parseHlsKey(`${imagePrefix(ID)}original`)).toBeNull();
    expect(parseHlsKey(`${imagePrefix(ID)}hls/720p/evil.sh`)).toBeNull();
  });

  it("names content types and uploads the master last", () => {
    const types = [
      "master.m3u8",
      "1080p/index.m3u8",
      "1080p/init_0.mp4",
      "1080p/seg_00000.m4s",
      "1080p/seg_00000.ts",
      "poster.jpg",
    ]
      .map((rel) => parseHlsPath(rel))
      .map((f) => (f ? hlsContentType(f) : null));
    expect(types).toEqual([
      "application/vnd.apple.mpegurl",
      "application/vnd.apple.mpegurl",
      "video/mp4",
      "video/mp4",
      "video/mp2t",
      "image/jpeg",
    ]);
    const rank = (rel: string) => {
      const f = parseHlsPath(rel);
      if (!f) throw new Error(rel);
      return uploadRank(f);
    };
    expect(rank("master.m3u8")).toBeGreaterThan(rank("poster.jpg"));
    expect(rank("poster.jpg")).toBeGreaterThan(rank("720p/index.m3u8"));
    expect(rank("720p/index.m3u8")).toBeGreaterThan(rank("720p/seg_00000.m4s"));
    expect(rank("720p/index.m3u8")).toBeGreaterThan(rank("720p/init_0.mp4"));
  });
});
