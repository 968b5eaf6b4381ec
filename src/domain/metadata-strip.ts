/**
 * Removes what a photo says about where and by whom it was taken (EXIF incl. GPS, XMP, IPTC,
 * comments) from the bytes anyone may fetch, without touching the coded pixels: segments and
 * chunks are dropped, nothing is decoded or re-encoded. The colour profile stays, and a JPEG's
 * orientation is kept in a minimal EXIF block so the image still displays upright. Pure.
 *
 * HEIC/AVIF keep their box structure (offsets into the file would shift otherwise): the bytes of
 * their Exif and XMP items are zeroed in place. GIF and anything unrecognised: null (not strippable).
 */
export type StripFormat = "jpeg" | "png" | "webp" | "heic" | "avif";

export interface Stripped {
  bytes: Buffer;
  /** Whether anything was removed (false: the input had no such metadata). */
  changed: boolean;
}

export function stripMetadata(input: Buffer, format: string): Stripped | null {
  switch (format) {
    case "jpeg":
      return stripJpeg(input);
    case "png":
      return stripPng(input);
    case "webp":
      return stripWebp(input);
    case "heic":
    case "avif":
      return stripHeif(input);
    default:
      return null;
  }
}

// --- JPEG: APP1 (EXIF, XMP), APP13 (IPTC/Photoshop), COM dropped; APP0, APP2 (ICC), APP14 kept.

function stripJpeg(input: Buffer): Stripped | null {
  if (input.length < 4 || input[0] !== 0xff || input[1] !== 0xd8) return null;
  const out: Buffer[] = [input.subarray(0, 2)];
  let orientation = 1;
  let changed = false;
  let pos = 2;
  while (pos + 4 <= input.length) {
    if (input[pos] !== 0xff) return null;
    const marker = input[pos + 1] as number;
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    // Start of scan: everything from here on is entropy-coded data and the markers inside it.
    if (marker === 0xda) {
      // Nothing dropped: no copy of a possibly large image.
      if (!changed) return { bytes: input, changed };
      if (orientation !== 1) out.splice(1, 0, orientationApp1(orientation));
      out.push(input.subarray(pos));
      return { bytes: Buffer.concat(out), changed };
    }
    const length = input.readUInt16BE(pos + 2);
    const end = pos + 2 + length;
    if (length < 2 || end > input.length) return null;
    const segment = input.subarray(pos, end);
    const drop = marker === 0xe1 || marker === 0xed || marker === 0xfe;
    if (marker === 0xe1 && isExif(segment))
      orientation = exifOrientation(segment.subarray(10)) ?? orientation;
    if (drop) changed = true;
    else out.push(segment);
    pos = end;
  }
  return null;
}

const isExif = (app1: Buffer) => app1.length > 10 && app1.toString("latin1", 4, 10) === "Exif\0\0";

/** Orientation (tag 0x0112) from a TIFF block's IFD0, or null. */
function exifOrientation(tiff: Buffer): number | null {
  if (tiff.length < 8) return null;
  const order = tiff.toString("latin1", 0, 2);
  if (order !== "II" && order !== "MM") return null;
  const le = order === "II";
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return null;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return null;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : null;
    }
  }
  return null;
}

/** An APP1 EXIF block holding only IFD0 with the Orientation tag (big-endian TIFF). */
function orientationApp1(orientation: number): Buffer {
  const tiff = Buffer.alloc(26);
  tiff.write("MM", 0, "latin1");
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4); // IFD0 right after the header
  tiff.writeUInt16BE(1, 8); // one entry
  tiff.writeUInt16BE(0x0112, 10); // Orientation
  tiff.writeUInt16BE(3, 12); // SHORT
  tiff.writeUInt32BE(1, 14); // count
  tiff.writeUInt16BE(orientation, 18); // value, left-justified in the 4-byte field
  tiff.writeUInt32BE(0, 22); // no next IFD
  const body = Buffer.concat([Buffer.from("Exif\0\0", "latin1"), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

// --- PNG: eXIf, tEXt, zTXt, iTXt (XMP lives in iTXt) and tIME dropped; iCCP, gAMA, pHYs… kept.

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_DROP = new Set(["eXIf", "tEXt", "zTXt", "iTXt", "tIME"]);

function stripPng(input: Buffer): Stripped | null {
  if (input.length < 8 || !input.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  const out: Buffer[] = [PNG_SIGNATURE];
  let changed = false;
  let pos = 8;
  while (pos + 12 <= input.length) {
    const length = input.readUInt32BE(pos);
    const type = input.toString("latin1", pos + 4, pos + 8);
    const end = pos + 12 + length;
    if (end > input.length) return null;
    if (PNG_DROP.has(type)) changed = true;
    else out.push(input.subarray(pos, end));
    pos = end;
    if (type === "IEND") return { bytes: changed ? Buffer.concat(out) : input, changed };
  }
  return null;
}

// --- WebP: EXIF and XMP chunks dropped and their VP8X flags cleared; ICCP kept.

function stripWebp(input: Buffer): Stripped | null {
  if (
    input.length < 12 ||
    input.toString("latin1", 0, 4) !== "RIFF" ||
    input.toString("latin1", 8, 12) !== "WEBP"
  ) {
    return null;
  }
  const out: Buffer[] = [];
  let changed = false;
  let pos = 12;
  while (pos + 8 <= input.length) {
    const type = input.toString("latin1", pos, pos + 4);
    const size = input.readUInt32LE(pos + 4);
    const end = pos + 8 + size + (size % 2);
    if (pos + 8 + size > input.length) return null;
    if (type === "EXIF" || type === "XMP ") {
      changed = true;
    } else if (type === "VP8X" && size >= 10) {
      const chunk = Buffer.from(input.subarray(pos, Math.min(end, input.length)));
      chunk[8] = (chunk[8] as number) & ~0x0c; // EXIF (0x08) and XMP (0x04) flags
      out.push(chunk);
    } else {
      out.push(input.subarray(pos, Math.min(end, input.length)));
    }
    pos = end;
  }
  if (!changed) return { bytes: input, changed };
  const body = Buffer.concat(out);
  const header = Buffer.alloc(12);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(body.length + 4, 4);
  header.write("WEBP", 8, "latin1");
  return { bytes: Buffer.concat([header, body]), changed };
}

// --- HEIF (HEIC, AVIF): the Exif item and XMP (mime) items' bytes zeroed where iloc says they are.

function stripHeif(input: Buffer): Stripped | null {
  const meta = findBox(input, 0, input.length, "meta");
  if (!meta) return null;
  // meta is a full box: 4 bytes of version and flags before its children.
  const start = meta.body + 4;
  const iinf = findBox(input, start, meta.end, "iinf");
  const iloc = findBox(input, start, meta.end, "iloc");
  if (!iinf || !iloc) return null;
  const targets = metadataItems(input, iinf);
  if (targets === null) return null;
  if (targets.size === 0) return { bytes: input, changed: false };
  const extents = itemExtents(input, iloc, targets);
  if (extents === null) return null;
  const out = Buffer.from(input);
  for (const { offset, length } of extents) {
    if (offset + length > out.length) return null;
    out.fill(0, offset, offset + length);
  }
  return { bytes: out, changed: extents.length > 0 };
}

interface Box {
  body: number;
  end: number;
}

function findBox(buf: Buffer, from: number, to: number, type: string): Box | null {
  let pos = from;
  while (pos + 8 <= to) {
    let size = buf.readUInt32BE(pos);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > to) return null;
      size = Number(buf.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) {
      size = to - pos;
    }
    if (size < header || pos + size > to) return null;
    if (buf.toString("latin1", pos + 4, pos + 8) === type) return { body: pos + header, end: pos + size };
    pos += size;
  }
  return null;
}

/** Ids of Exif items and of mime items (XMP) listed in iinf; null when it cannot be read. */
function metadataItems(buf: Buffer, iinf: Box): Set<number> | null {
  const version = buf[iinf.body] as number;
  let pos = iinf.body + 4;
  const count = version === 0 ? buf.readUInt16BE(pos) : buf.readUInt32BE(pos);
  pos += version === 0 ? 2 : 4;
  const ids = new Set<number>();
  for (let i = 0; i < count; i++) {
    const infe = findBox(buf, pos, iinf.end, "infe");
    if (!infe) return null;
    const v = buf[infe.body] as number;
    if (v >= 2) {
      const id = v === 2 ? buf.readUInt16BE(infe.body + 4) : buf.readUInt32BE(infe.body + 4);
      const typeAt = infe.body + 4 + (v === 2 ? 2 : 4) + 2;
      const itemType = buf.toString("latin1", typeAt, typeAt + 4);
      if (itemType === "Exif" || itemType === "mime") ids.add(id);
    }
    pos = infe.end;
  }
  return ids;
}

/** File extents of the given items (construction method 0: offsets into the file). */
function itemExtents(
  buf: Buffer,
  iloc: Box,
  ids: Set<number>,
): Array<{ offset: number; length: number }> | null {
  const version = buf[iloc.body] as number;
  let pos = iloc.body + 4;
  const sizes = buf.readUInt16BE(pos);
  pos += 2;
  const offsetSize = sizes >> 12;
  const lengthSize = (sizes >> 8) & 0xf;
  const baseOffsetSize = (sizes >> 4) & 0xf;
  const indexSize = version === 1 || version === 2 ? sizes & 0xf : 0;
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + (buf[pos + i] as number);
    pos += n;
    return v;
  };
  const count = version < 2 ? read(2) : read(4);
  const out: Array<{ offset: number; length: number }> = [];
  for (let i = 0; i < count; i++) {
    if (pos > iloc.end) return null;
    const id = version < 2 ? read(2) : read(4);
    const method = version === 1 || version === 2 ? read(2) & 0xf : 0;
    read(2); // data reference index
    const base = read(baseOffsetSize);
    const extents = read(2);
    for (let e = 0; e < extents; e++) {
      read(indexSize);
      const offset = read(offsetSize);
      const length = read(lengthSize);
      if (ids.has(id)) {
        // Data inside the idat box or another item: not where we can zero it safely.
        if (method !== 0) return null;
        out.push({ offset: base + offset, length });
      }
    }
  }
  return out;
}
