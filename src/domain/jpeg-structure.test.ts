import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { scanBombJpeg } from "../../test/support/image-builders.ts";
import { countJpegScans } from "./jpeg-structure.ts";

const bytes = (...parts: (number[] | Buffer)[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const sos = [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00];

describe("countJpegScans", () => {
  it("counts one scan in a baseline JPEG and several in a progressive one", async () => {
    const img = sharp({ create: { width: 64, height: 48, channels: 3, background: "#c84" } });
    const baseline = await img.clone().jpeg().toBuffer();
    const progressive = await img.clone().jpeg({ progressive: true }).toBuffer();
    expect(countJpegScans(baseline)).toEqual({ scans: 1, complete: true });
    const p = countJpegScans(progressive);
    expect(p.complete).toBe(true);
    expect(p.scans).toBeGreaterThan(1);
    expect(p.scans).toBeLessThan(20);
  });

  it("counts every scan of a scan bomb, and stops one past the limit", () => {
    const bomb = scanBombJpeg(500, 512);
    expect(countJpegScans(bomb)).toEqual({ scans: 501, complete: true });
    expect(countJpegScans(bomb, 100)).toEqual({ scans: 101, complete: false });
    expect(countJpegScans(bomb, 501)).toEqual({ scans: 501, complete: true });
  });

  it("does not take stuffed bytes, restart markers or fill bytes in scan data for markers", () => {
    const data = [0x12, 0xff, 0x00, 0xff, 0xd0, 0x34, 0xff, 0xd7, 0xff, 0x00, 0x56];
    const jpeg = bytes([0xff, 0xd8], sos, data, [0xff, 0xff, 0xff], sos, data, [0xff, 0xd9]);
    expect(countJpegScans(jpeg)).toEqual({ scans: 2, complete: true });
    // A 0xFF 0xDA inside other segments' payloads (here a comment) is skipped with the segment.
    const comment = [0xff, 0xfe, 0x00, 0x06, 0xff, 0xda, 0xff, 0xda];
    expect(countJpegScans(bytes([0xff, 0xd8], comment, sos, data, [0xff, 0xd9]))).toEqual({
      scans: 1,
      complete: true,
    });
  });

  it("answers zero for what is not a JPEG and stops at truncation", () => {
    expect(countJpegScans(Buffer.from("GIF89a......"))).toEqual({ scans: 0, complete: false });
    expect(countJpegScans(Buffer.alloc(0))).toEqual({ scans: 0, complete: false });
    expect(countJpegScans(bytes([0xff, 0xd8], sos, [0x12, 0x34]))).toEqual({ scans: 1, complete: false });
    expect(countJpegScans(bytes([0xff, 0xd8, 0xff, 0xe0, 0x00]))).toEqual({ scans: 0, complete: false });
    // A length below 2 would loop forever if taken at its word.
    expect(countJpegScans(bytes([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x00, 0xff, 0xd9]))).toEqual({
      scans: 0,
      complete: false,
    });
  });
});
