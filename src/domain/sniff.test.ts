import { describe, expect, it } from "vitest";
import { sniff } from "./sniff.ts";

const bytes = (...parts: (number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

describe("sniff", () => {
  it.each([
    [bytes([0xff, 0xd8, 0xff, 0xe0]), "image/jpeg"],
    [bytes([0x89], "PNG\r\n\x1a\n"), "image/png"],
    [bytes("GIF89a"), "image/gif"],
    [bytes("RIFF", [0, 0, 0, 0], "WEBPVP8 "), "image/webp"],
    [bytes([0, 0, 0, 0x1c], "ftypavif", [0, 0, 0, 0], "avifmif1miaf"), "image/avif"],
    [bytes([0, 0, 0, 0x18], "ftypheic", [0, 0, 0, 0], "mif1heic"), "image/heic"],
    [bytes([0, 0, 0, 0x18], "ftypmif1", [0, 0, 0, 0], "mif1avif"), "image/avif"],
    [bytes("BM"), "image/bmp"],
  ])("recognises %#", (b, mime) => {
    expect(sniff(b)).toMatchObject({ kind: "image", mime });
  });

  it("flags markup that a browser could run", () => {
    expect(
      sniff(Buffer.from("\uFEFF  <svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "utf8")),
    ).toEqual({
      kind: "active",
      mime: "image/svg+xml",
    });
    expect(sniff(bytes("<!DOCTYPE html><html>"))).toMatchObject({ kind: "active", mime: "text/html" });
    expect(sniff(bytes("<?xml version='1.0'?><a/>"))).toMatchObject({
      kind: "active",
      mime: "application/xml",
    });
  });

  it("knows nothing of text, PDFs, videos and empty input", () => {
    expect(sniff(bytes("hello world"))).toEqual({ kind: "other", mime: null });
    expect(sniff(bytes("%PDF-1.7"))).toMatchObject({ kind: "other", mime: "application/pdf" });
    expect(sniff(bytes([0, 0, 0, 0x18], "ftypisom"))).toMatchObject({ kind: "other", mime: "video/mp4" });
    expect(sniff(Buffer.alloc(0))).toEqual({ kind: "other", mime: null });
  });
});
