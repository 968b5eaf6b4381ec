/**
 * Byte-level image builders for tests and benchmarks: photo-like pictures, and real files edited
 * to lie about themselves (huge dimensions, endless frames) with their checksums kept valid.
 */
import { crc32, deflateSync } from "node:zlib";
import sharp, { type Sharp } from "sharp";
import type { OutputFormat, TransformSpec } from "../../src/domain/transform-spec.ts";

export const b = (...parts: (number[] | string | Buffer)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

/** Photo-like pixels (gradients and a ripple) so that encoders do real work. */
export function photoPixels(width: number, height: number, channels: 3 | 4 = 3): Buffer {
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = 128 + 100 * Math.sin((x + y) / 7);
      if (channels === 4) raw[i + 3] = x < width / 2 ? 255 : 96;
    }
  }
  return raw;
}

export function photo(width = 96, height = 64, channels: 3 | 4 = 3) {
  return sharp(photoPixels(width, height, channels), { raw: { width, height, channels } });
}

/**
 * A photo-like picture: a diagonal gradient, soft shapes and fine grain, so that encoders meet
 * something like real content (flat test patterns encode unrealistically fast or slow).
 */
export async function photoLike(width: number, height: number, seed = 1): Promise<Sharp> {
  const hue = (seed * 67) % 360;
  const shapes = Array.from({ length: 6 }, (_, i) => {
    const x = ((seed * 31 + i * 97) % 100) / 100;
    const y = ((seed * 17 + i * 53) % 100) / 100;
    const r = 0.08 + ((i * 13 + seed) % 20) / 100;
    return `<circle cx="${x * width}" cy="${y * height}" r="${r * Math.min(width, height)}" fill="hsl(${(hue + i * 50) % 360},60%,${35 + i * 7}%)" fill-opacity="0.7"/>`;
  }).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},55%,35%)"/><stop offset="1" stop-color="hsl(${(hue + 140) % 360},65%,70%)"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>${shapes}</svg>`;
  // Grain from a seeded generator: libvips' gaussian noise takes seconds at this size.
  const grain = Buffer.alloc(width * height * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < grain.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    grain[i] = 104 + ((state >>> 24) % 24) + ((state >>> 16) & 0x1f);
  }
  const soft = await sharp(Buffer.from(svg))
    .blur(Math.max(2, width / 300))
    .png({ compressionLevel: 1 })
    .toBuffer();
  const base = await sharp(soft)
    .composite([{ input: grain, raw: { width, height, channels: 3 }, blend: "soft-light" }])
    .png({ compressionLevel: 1 })
    .toBuffer();
  return sharp(base);
}

/** A PNG chunk with a correct CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = b(type, data);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return b(len, body, crc);
}

/** A well-formed 1-bit greyscale PNG of any size whose pixels are all zero: kilobytes on disk. */
export function zeroPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, no filter, no interlace
  const raw = Buffer.alloc((1 + Math.ceil(width / 8)) * height);
  return b(
    [0x89],
    "PNG\r\n\x1a\n",
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(raw, { level: 9 })),
    pngChunk("IEND", Buffer.alloc(0)),
  );
}

/** Rewrites the IHDR of a real PNG (and its CRC) to claim another size. */
export function pngClaiming(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Rewrites the SOF of a real JPEG to claim another size. */
export function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2)) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
  }
  throw new Error("no SOF marker");
}

/**
 * A GIF with `frames` frames, from a real two-frame GIF whose last frame (graphic control
 * extension + image) is repeated: a 10,000-frame file costs a few hundred kilobytes and no encode.
 */
export function repeatLastGifFrame(gif: Buffer, frames: number): Buffer {
  let i = 13;
  if ((gif[10] ?? 0) & 0x80) i += 3 * 2 ** (((gif[10] ?? 0) & 7) + 1);
  const skipSubBlocks = (at: number) => {
    let p = at;
    while ((gif[p] ?? 0) !== 0) p += (gif[p] ?? 0) + 1;
    return p + 1;
  };
  let frameStart = -1;
  let lastFrame: Buffer | null = null;
  while (i < gif.length && gif[i] !== 0x3b) {
    if (gif[i] === 0x21) {
      if (gif[i + 1] === 0xf9) frameStart = i;
      i = skipSubBlocks(i + 2);
    } else if (gif[i] === 0x2c) {
      const start = frameStart >= 0 ? frameStart : i;
      const flags = gif[i + 9] ?? 0;
      let p = i + 10;
      if (flags & 0x80) p += 3 * 2 ** ((flags & 7) + 1);
      i = skipSubBlocks(p + 1);
      lastFrame = gif.subarray(start, i);
      frameStart = -1;
    } else {
      throw new Error(`unexpected GIF block 0x${(gif[i] ?? 0).toString(16)} at ${i}`);
    }
  }
  if (!lastFrame) throw new Error("no frame in the GIF");
  const head = gif.subarray(0, i - lastFrame.length);
  return b(head, ...Array.from({ length: frames - 1 }, () => lastFrame as Buffer), [0x3b]);
}

/** Sets the 14-bit dimensions of a lossy WebP's VP8 key frame header. */
export function webpClaiming(webp: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(webp);
  const vp8 = out.indexOf("VP8 ", 12, "latin1");
  const start = out.indexOf(Buffer.from([0x9d, 0x01, 0x2a]), vp8);
  if (vp8 < 0 || start < 0) throw new Error("not a lossy WebP");
  out.writeUInt16LE(width & 0x3fff, start + 3);
  out.writeUInt16LE(height & 0x3fff, start + 5);
  return out;
}

export function bmp(width: number, height: number): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const h = Buffer.alloc(54);
  h.write("BM", 0, "latin1");
  h.writeUInt32LE(54 + row * height, 2);
  h.writeUInt32LE(54, 10);
  h.writeUInt32LE(40, 14);
  h.writeInt32LE(width, 18);
  h.writeInt32LE(height, 22);
  h.writeUInt16LE(1, 26);
  h.writeUInt16LE(24, 28);
  return b(h, Buffer.alloc(row * height, 0x7f));
}

export function garbage(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  out[0] = 0x13; // never a magic number
  return out;
}

// Pixel checks shared by the imaging tests.

export type RGB = [number, number, number];
export const RED: RGB = [220, 30, 30];
export const GREEN: RGB = [30, 200, 40];
export const BLUE: RGB = [30, 40, 220];
export const WHITE: RGB = [240, 240, 240];

/** Four flat quadrants, so any rotation or mirror shows in a corner pixel. */
export function quadrants(width: number, height: number, alpha = false) {
  const channels = alpha ? 4 : 3;
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = y < height / 2 ? (x < width / 2 ? RED : GREEN) : x < width / 2 ? BLUE : WHITE;
      const i = (y * width + x) * channels;
      raw.set(c, i);
      if (alpha) raw[i + 3] = x >= width / 2 && y < height / 2 ? 0 : 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels } });
}

export async function pixel(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [...data.subarray(i, i + info.channels)];
}

/** Throws unless every channel is within `tolerance` (a plain Error: benchmarks import this file too). */
export function near(actual: number[], expected: number[], tolerance = 24): void {
  const off = expected.some((v, i) => Math.abs((actual[i] ?? -999) - v) > tolerance);
  if (off) throw new Error(`pixel ${actual} is not within ${tolerance} of ${expected}`);
}

export const spec = (s: Partial<TransformSpec> & { format: OutputFormat }) => ({
  fit: "inside" as const,
  dpr: 1,
  ...s,
});

/**
 * A valid grayscale progressive JPEG whose cost is all in its scans: DQT, SOF2 of `size`x`size`,
 * one Huffman table per class with one code each, a DC scan (one bit per block), then AC scans
 * that each code one long EOB run (~55 bytes apiece) yet make libjpeg visit every block of the
 * frame. The progression is legal (each coefficient k, successive approximation 13..0) up to
 * 63x14 AC scans; beyond that, scans repeat (libjpeg only warns). At 7000x7000 a few hundred
 * scans take seconds to decode, from about 100 KB.
 */
export function scanBombJpeg(scans: number, size = 7000): Buffer {
  const blocks = Math.ceil(size / 8) ** 2;
  const seg = (marker: number, body: Buffer) =>
    b([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff], body);
  const dqt = seg(0xdb, b([0x00], Buffer.alloc(64, 1)));
  const sof2 = seg(0xc2, b([8, size >> 8, size & 0xff, size >> 8, size & 0xff, 1, 1, 0x11, 0]));
  // DC table 0: one 1-bit code for category 0. AC table 0: one 1-bit code for EOB14 (0xE0).
  const counts = (symbol: number) => b([1], Buffer.alloc(15), [symbol]);
  const dht = seg(0xc4, b([0x00], counts(0x00), [0x10], counts(0xe0)));
  const sos = (ss: number, se: number, ah: number, al: number) =>
    seg(0xda, b([1, 1, 0x00, ss, se, (ah << 4) | al]));
  // DC first scan: category 0 (bit 0) for every block, padded with ones.
  const dcBits = Buffer.alloc(Math.ceil(blocks / 8));
  if (blocks % 8) dcBits[dcBits.length - 1] = 0xff >> (blocks % 8);
  // An AC scan: EOB14 with 14 extra one-bits = a run of 32767 blocks, enough of them for the frame.
  const bits: number[] = [];
  for (let covered = 0; covered < blocks; covered += 32767) bits.push(0, ...Array(14).fill(1));
  while (bits.length % 8) bits.push(1);
  const ac: number[] = [];
  for (let i = 0; i < bits.length; i += 8) {
    const byte = bits.slice(i, i + 8).reduce((acc, bit) => (acc << 1) | bit, 0);
    ac.push(byte);
    if (byte === 0xff) ac.push(0x00);
  }
  const acData = Buffer.from(ac);
  const parts: Buffer[] = [b([0xff, 0xd8]), dqt, sof2, dht, sos(0, 0, 0, 0), dcBits];
  for (let n = 0; n < scans; n++) {
    const legal = n % (63 * 14);
    const k = 1 + Math.floor(legal / 14);
    const al = 13 - (legal % 14);
    parts.push(sos(k, k, al === 13 ? 0 : al + 1, al), acData);
  }
  parts.push(b([0xff, 0xd9]));
  return Buffer.concat(parts);
}

/**
 * A HEIC whose primary image is a `grid` of `width`x`height` made of one small HEVC tile repeated:
 * every tile item points at the same coded bytes, so ~30 KB of file decode into width*height*4
 * bytes of RGBA (and more inside libheif). Built from a single-image HEIC (one hvc1 item whose
 * properties are hvcC, ispe, pixi, as test/fixtures/images/quadrants.heic is).
 */
export function heicGridBomb(heic: Buffer, width: number, height: number): Buffer {
  const box = (type: string, ...body: Buffer[]) => {
    const content = Buffer.concat(body);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(content.length + 8);
    head.write(type, 4, "latin1");
    return Buffer.concat([head, content]);
  };
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  const full = Buffer.alloc(4);
  const find = (type: string, from = 0) => heic.indexOf(type, from, "latin1") - 4;
  const slice = (at: number) => heic.subarray(at, at + heic.readUInt32BE(at));
  const ftyp = slice(0);
  const hdlr = slice(find("hdlr"));
  const ipcoAt = find("ipco");
  const ipcoBody = slice(ipcoAt).subarray(8);
  const tileW = heic.readUInt32BE(find("ispe") + 12);
  const tileH = heic.readUInt32BE(find("ispe") + 16);
  // The coded tile: the one extent of the one item (iloc version 0, 4-byte base offset, offsets
  // and lengths: sizes, count, id, data reference, base offset, extent count, offset, length).
  const iloc = find("iloc");
  const tileOffset = heic.readUInt32BE(iloc + 20) + heic.readUInt32BE(iloc + 26);
  const tileLength = heic.readUInt32BE(iloc + 30);
  const tile = heic.subarray(tileOffset, tileOffset + tileLength);

  const cols = Math.ceil(width / tileW);
  const rows = Math.ceil(height / tileH);
  const tiles = Array.from({ length: cols * rows }, (_, i) => i + 1);
  const GRID = tiles.length + 1;
  const grid = Buffer.from([0, 0, rows - 1, cols - 1, width >> 8, width & 0xff, height >> 8, height & 0xff]);
  const infe = (id: number, type: string) =>
    box("infe", Buffer.from([2, 0, 0, 0]), u16(id), u16(0), Buffer.from(type, "latin1"), Buffer.from([0]));
  const iinf = box(
    "iinf",
    full,
    u16(tiles.length + 1),
    ...tiles.map((id) => infe(id, "hvc1")),
    infe(GRID, "grid"),
  );
  const iref = box("iref", full, box("dimg", u16(GRID), u16(tiles.length), ...tiles.map(u16)));
  const ispe = box("ispe", full, u32(width), u32(height));
  // Properties 1-3 as in the source (hvcC, ispe, pixi), 4 the grid's own size.
  const iprp = box(
    "iprp",
    box("ipco", ipcoBody, ispe),
    box(
      "ipma",
      full,
      u32(tiles.length + 1),
      ...tiles.map((id) => Buffer.concat([u16(id), Buffer.from([3, 0x81, 0x02, 0x83])])),
      u16(GRID),
      Buffer.from([1, 0x04]),
    ),
  );
  const pitm = box("pitm", full, u16(GRID));
  const ilocOf = (tileAt: number, gridAt: number) =>
    box(
      "iloc",
      full,
      Buffer.from([0x44, 0x00]),
      u16(tiles.length + 1),
      ...tiles.map((id) => Buffer.concat([u16(id), u16(0), u16(1), u32(tileAt), u32(tile.length)])),
      Buffer.concat([u16(GRID), u16(0), u16(1), u32(gridAt), u32(grid.length)]),
    );
  const meta = (tileAt: number, gridAt: number) =>
    box("meta", full, hdlr, pitm, ilocOf(tileAt, gridAt), iinf, iref, iprp);
  const metaLength = meta(0, 0).length;
  const mdatAt = ftyp.length + metaLength;
  const tileAt = mdatAt + 8;
  return Buffer.concat([ftyp, meta(tileAt, tileAt + tile.length), box("mdat", tile, grid)]);
}

/** EXIF GPS tags (a spot in Paris) for sharp's withExifMerge: what a phone photo carries. */
export const GPS_EXIF = {
  IFD3: {
    GPSLatitudeRef: "N",
    GPSLatitude: "48/1 51/1 24/1",
    GPSLongitudeRef: "E",
    GPSLongitude: "2/1 21/1 8/1",
  },
};

/** Whether the bytes hold an EXIF GPSInfo pointer (tag 0x8825, LONG, count 1) in either byte order. */
export function hasGpsIfd(bytes: Buffer): boolean {
  return (
    bytes.includes(Buffer.from([0x88, 0x25, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01])) ||
    bytes.includes(Buffer.from([0x25, 0x88, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]))
  );
}
