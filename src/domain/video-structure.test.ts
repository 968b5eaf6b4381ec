import { describe, expect, it } from "vitest";
import { isoBoxesComplete, isoBoxStep, matroskaComplete, readVint } from "./video-structure.ts";

const box = (size: number, type: string) => {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(size, 0);
  b.write(type, 4, "latin1");
  return b;
};

describe("isoBoxStep", () => {
  it("steps over a box that fits", () => {
    expect(isoBoxStep(box(32, "ftyp"), 0, 1000)).toEqual({ kind: "box", type: "ftyp", next: 32 });
    expect(isoBoxStep(Buffer.alloc(0), 1000, 1000)).toEqual({ kind: "end" });
  });

  it("calls a box that runs past the end truncated", () => {
    expect(isoBoxStep(box(5000, "mdat"), 100, 1000)).toMatchObject({ kind: "truncated" });
    // Fewer bytes than a box header are no box: padding, or a header cut (the caller decides).
    expect(isoBoxStep(box(8, "free").subarray(0, 4), 996, 1000)).toMatchObject({ kind: "junk" });
  });

  it("reads 64-bit sizes and size 0 (to the end)", () => {
    const large = box(1, "mdat");
    large.writeBigUInt64BE(5_000_000_000n, 8);
    expect(isoBoxStep(large, 0, 5_000_000_000)).toEqual({ kind: "box", type: "mdat", next: 5_000_000_000 });
    expect(isoBoxStep(large, 0, 4_000_000_000)).toMatchObject({ kind: "truncated" });
    expect(isoBoxStep(box(0, "mdat"), 40, 1000)).toEqual({ kind: "box", type: "mdat", next: 1000 });
  });

  it("tells junk from a box too small to be one", () => {
    expect(isoBoxStep(box(4, "ftyp"), 0, 1000)).toMatchObject({ kind: "corrupt" });
    const zip = Buffer.from("PK\u0003\u0004\u0014\u0000\u0000\u0000\u0008\u0000");
    expect(isoBoxStep(zip, 0, 1000)).toMatchObject({ kind: "junk" });
    expect(isoBoxStep(Buffer.alloc(16), 0, 1000)).toMatchObject({ kind: "junk" });
  });

  it("wants a moov", () => {
    expect(isoBoxesComplete(["ftyp", "mdat", "moov"])).toEqual({ ok: true });
    expect(isoBoxesComplete(["ftyp", "mdat"])).toMatchObject({ ok: false });
  });
});

describe("Matroska", () => {
  it("reads EBML vints", () => {
    expect(readVint(Uint8Array.from([0x81]), 0)).toEqual({ value: 1, length: 1, unknown: false });
    expect(readVint(Uint8Array.from([0x40, 0x02]), 0)).toEqual({ value: 2, length: 2, unknown: false });
    expect(readVint(Uint8Array.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0)).toMatchObject({
      length: 8,
      unknown: true,
    });
    expect(readVint(Uint8Array.from([0x00]), 0)).toBeNull();
  });

  // EBML header of 4 payload bytes, then a Segment of `segSize` (1-byte vint when < 127).
  const file = (segSizeVint: number[]) =>
    Uint8Array.from([
      0x1a,
      0x45,
      0xdf,
      0xa3,
      0x84,
      0x42,
      0x82,
      0x81,
      0x77,
      0x18,
      0x53,
      0x80,
      0x67,
      ...segSizeVint,
    ]);

  it("compares the Segment's declared size with the file's", () => {
    const head = file([0x40 | 0, 100]); // 2-byte vint: 100
    const segEnd = 9 + 4 + 2 + 100;
    expect(matroskaComplete(head, segEnd)).toEqual({ ok: true });
    expect(matroskaComplete(head, segEnd - 1)).toMatchObject({ ok: false, truncated: true });
  });

  it("cannot judge a Segment of unknown size (a live recording) and leaves it to ffprobe", () => {
    expect(matroskaComplete(file([0xff]), 20)).toEqual({ ok: true });
  });

  it("refuses what is no Matroska", () => {
    expect(matroskaComplete(Uint8Array.from([1, 2, 3, 4, 5]), 5)).toMatchObject({
      ok: false,
      truncated: false,
    });
  });
});
