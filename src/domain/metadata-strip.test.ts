import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { GPS_EXIF, hasGpsIfd } from "../../test/support/image-builders.ts";
import { stripMetadata } from "./metadata-strip.ts";

const XMP = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Secret</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`;

const picture = () =>
  sharp({ create: { width: 48, height: 32, channels: 3, background: "#3366cc" } }).composite([
    { input: { create: { width: 16, height: 16, channels: 3, background: "#ff8800" } }, left: 4, top: 4 },
  ]);

async function pixels(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}

const leaks = (bytes: Buffer) => bytes.toString("latin1").includes("Jane Secret") || hasGpsIfd(bytes);

/** sharp's own reading: whether any EXIF GPS or XMP survives. */
async function metadataOf(bytes: Buffer) {
  const m = await sharp(bytes).metadata();
  return { exif: m.exif, xmp: m.xmp, orientation: m.orientation, icc: m.icc };
}

describe("stripping location and authorship from what the public fetches", () => {
  it("JPEG: drops EXIF (GPS_EXIF), XMP and comments, keeps the orientation, the ICC profile and every coded byte of the image", async () => {
    const input = await picture()
      .jpeg()
      .withMetadata({ orientation: 6, icc: "p3" })
      .withExifMerge(GPS_EXIF)
      .withXmp(XMP)
      .toBuffer();
    expect(hasGpsIfd(input)).toBe(true);
    const out = stripMetadata(input, "jpeg");
    expect(out?.changed).toBe(true);
    const bytes = out?.bytes as Buffer;
    expect(leaks(bytes)).toBe(false);
    const meta = await metadataOf(bytes);
    expect(meta.orientation).toBe(6);
    expect(meta.xmp).toBeUndefined();
    expect(meta.icc).toBeDefined();
    expect(await pixels(bytes)).toEqual(await pixels(input));
    // The scan data is copied, not re-encoded: the output ends with the input's last 1000 bytes.
    expect(bytes.subarray(-1000).equals(input.subarray(-1000))).toBe(true);
  });

  it("JPEG without metadata: unchanged", async () => {
    const input = await picture().jpeg().toBuffer();
    const out = stripMetadata(input, "jpeg");
    expect(out?.changed).toBe(false);
    expect(await pixels(out?.bytes as Buffer)).toEqual(await pixels(input));
  });

  it("PNG: drops eXIf and text chunks (XMP), keeps iCCP and the pixels", async () => {
    const input = await picture()
      .png()
      .withMetadata({ icc: "p3" })
      .withExifMerge(GPS_EXIF)
      .withXmp(XMP)
      .toBuffer();
    expect(input.toString("latin1")).toContain("XML:com.adobe.xmp");
    expect(input.toString("latin1")).toContain("eXIf");
    const out = stripMetadata(input, "png");
    expect(out?.changed).toBe(true);
    const bytes = out?.bytes as Buffer;
    expect(leaks(bytes)).toBe(false);
    expect(bytes.toString("latin1")).not.toMatch(/XML:com\.adobe\.xmp|eXIf/);
    expect((await metadataOf(bytes)).icc).toBeDefined();
    expect(await pixels(bytes)).toEqual(await pixels(input));
  });

  it("WebP: drops the EXIF and XMP chunks and their flags, keeps ICCP and the pixels", async () => {
    const input = await picture()
      .webp({ lossless: true })
      .withMetadata({ icc: "p3" })
      .withExifMerge(GPS_EXIF)
      .withXmp(XMP)
      .toBuffer();
    const out = stripMetadata(input, "webp");
    expect(out?.changed).toBe(true);
    const bytes = out?.bytes as Buffer;
    expect(leaks(bytes)).toBe(false);
    const meta = await metadataOf(bytes);
    expect(meta.exif).toBeUndefined();
    expect(meta.icc).toBeDefined();
    expect(bytes.readUInt32LE(4)).toBe(bytes.length - 8);
    expect(await pixels(bytes)).toEqual(await pixels(input));
  });

  it("AVIF: zeroes the Exif and XMP items in place; the file still decodes to the same pixels", async () => {
    const input = await picture().avif({ lossless: true }).withExifMerge(GPS_EXIF).withXmp(XMP).toBuffer();
    const out = stripMetadata(input, "avif");
    expect(out?.changed).toBe(true);
    const bytes = out?.bytes as Buffer;
    expect(bytes.length).toBe(input.length);
    expect(bytes.toString("latin1")).not.toContain("Jane Secret");
    expect(hasGpsIfd(bytes)).toBe(false);
    expect(await pixels(bytes)).toEqual(await pixels(input));
  });

  it("refuses what it cannot parse rather than guess", () => {
    expect(stripMetadata(Buffer.from("GIF89a"), "gif")).toBeNull();
    expect(stripMetadata(Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff]), "jpeg")).toBeNull();
    expect(stripMetadata(Buffer.from("not a png at all"), "png")).toBeNull();
  });
});
