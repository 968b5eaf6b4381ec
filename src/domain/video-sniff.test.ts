import { describe, expect, it } from "vitest";
import { sniffVideo } from "./video-sniff.ts";

const bytes = (...parts: (number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc(64 - b.length)]);

describe("sniffVideo", () => {
  it("recognises MP4 brands and QuickTime", () => {
    expect(sniffVideo(pad(bytes([0, 0, 0, 0x20], "ftypisom", [0, 0, 2, 0], "isomiso2avc1mp41")))).toEqual({
      family: "isobmff",
      brand: "isom",
      quicktime: false,
    });
    expect(sniffVideo(pad(bytes([0, 0, 0, 0x14], "ftypqt  ", [0, 0, 2, 0], "qt  ")))).toEqual({
      family: "isobmff",
      brand: "qt  ",
      quicktime: true,
    });
    // An old QuickTime file starts with its moov (or wide/mdat) atom, no ftyp.
    expect(sniffVideo(pad(bytes([0, 0, 0x10, 0], "moov")))).toMatchObject({
      family: "isobmff",
      quicktime: true,
    });
  });

  it("does not take a HEIF/AVIF image for a video", () => {
    expect(sniffVideo(pad(bytes([0, 0, 0, 0x1c], "ftypavif", [0, 0, 0, 0], "avifmif1miaf")))).toBeNull();
    expect(sniffVideo(pad(bytes([0, 0, 0, 0x18], "ftypmif1", [0, 0, 0, 0], "mif1heic")))).toBeNull();
  });

  it("reads the EBML DocType of Matroska and WebM", () => {
    const ebml = (doc: string) =>
      pad(bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 1, 0x42, 0x82, 0x80 | doc.length], doc));
    expect(sniffVideo(ebml("webm"))).toEqual({ family: "matroska", docType: "webm" });
    expect(sniffVideo(ebml("matroska"))).toEqual({ family: "matroska", docType: "matroska" });
  });

  it.each([
    ["a zip", pad(bytes("PK", [3, 4, 20, 0, 0, 0, 8, 0]))],
    ["text", pad(bytes("hello, this is not a video at all\n"))],
    ["a JPEG", pad(bytes([0xff, 0xd8, 0xff, 0xe0]))],
    ["too few bytes", bytes([0, 0, 0, 0x20], "ftyp")],
    ["an ftyp box too small for a brand", pad(bytes([0, 0, 0, 8], "ftypisom"))],
    ["an unknown atom", pad(bytes([0, 0, 0, 0x10], "abcd"))],
  ])("refuses %s", (_, b) => {
    expect(sniffVideo(b)).toBeNull();
  });
});
