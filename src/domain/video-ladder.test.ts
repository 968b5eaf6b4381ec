import { describe, expect, it } from "vitest";
import { isRungName, renditionLadder } from "./video-ladder.ts";

const names = (l: { name: string }[]) => l.map((r) => r.name);

describe("renditionLadder", () => {
  it("starts at the source's size and never upscales", () => {
    const l = renditionLadder({ width: 640, height: 360, fps: 30, hasAudio: true });
    expect(l.map(({ name, width, height }) => ({ name, width, height }))).toEqual([
      { name: "360p", width: 640, height: 360 },
      { name: "240p", width: 426, height: 240 },
    ]);
  });

  it("caps a 4K source at 1080p and keeps every standard rung below", () => {
    const l = renditionLadder({ width: 3840, height: 2160, fps: 30, hasAudio: true });
    expect(names(l)).toEqual(["1080p", "720p", "480p", "240p"]);
    expect(l.map((r) => [r.width, r.height])).toEqual([
      [1920, 1080],
      [1280, 720],
      [854, 480],
      [426, 240],
    ]);
  });

  it("names a portrait video's rungs by the short side", () => {
    const l = renditionLadder({ width: 1080, height: 1920, fps: 30, hasAudio: false });
    expect(names(l)).toEqual(["1080p", "720p", "480p", "240p"]);
    expect(l[0]).toMatchObject({ width: 1080, height: 1920, audioKbps: 0 });
    expect(l[1]).toMatchObject({ width: 720, height: 1280 });
  });

  it.each([
    [641, 361],
    [1279, 719],
    [1918, 1082],
    [720, 480],
    [352, 288],
    [3000, 17],
    [17, 4001],
    [160, 90],
  ])("gives even sizes no larger than a %i×%i source", (width, height) => {
    const l = renditionLadder({ width, height, fps: 25, hasAudio: true });
    expect(l.length).toBeGreaterThan(0);
    for (const r of l) {
      expect(r.width % 2).toBe(0);
      expect(r.height % 2).toBe(0);
      expect(r.width).toBeLessThanOrEqual(width);
      expect(r.height).toBeLessThanOrEqual(height);
      expect(isRungName(r.name)).toBe(true);
    }
    // Strictly decreasing sizes: no two rungs the same.
    const px = l.map((r) => r.width * r.height);
    expect(px).toEqual([...px].sort((a, b) => b - a));
    expect(new Set(px).size).toBe(px.length);
  });

  it("caps the frame rate and gives smaller rungs fewer bits", () => {
    const l = renditionLadder({ width: 1920, height: 1080, fps: 120, hasAudio: true });
    expect(l.every((r) => r.fps === 60)).toBe(true);
    const kbps = l.map((r) => r.videoKbps);
    expect(kbps).toEqual([...kbps].sort((a, b) => b - a));
    expect(new Set(kbps).size).toBe(kbps.length);
    expect(l[0]).toMatchObject({ audioKbps: 128 });
    expect(l.at(-1)).toMatchObject({ audioKbps: 64 });
    for (const r of l) expect(r.maxrateKbps).toBeGreaterThan(r.videoKbps);
  });

  it("checks rung names", () => {
    expect(isRungName("720p")).toBe(true);
    expect(isRungName("../p")).toBe(false);
    expect(isRungName("0720p")).toBe(false);
  });
});
