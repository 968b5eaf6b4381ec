/**
 * Truncation checks on a container's top-level structure. ffprobe accepts an MP4 whose moov comes
 * first and whose mdat was cut short (it reads the index, not the samples), and ffmpeg then
 * transcodes what is there without failing; the declared box sizes tell the truth. Pure: the
 * caller reads headers at the offsets these functions ask for (src/video/container-check.ts).
 */
export const BOX_HEADER_BYTES = 16;

export type BoxStep =
  | { kind: "box"; type: string; next: number }
  | { kind: "end" }
  | { kind: "truncated"; detail: string }
  | { kind: "corrupt"; detail: string }
  /** No box header here (padding, junk): fine after the boxes a file needs, corrupt before them. */
  | { kind: "junk"; detail: string };

/**
 * One top-level ISO-BMFF box at `offset` from its first 16 bytes (fewer at the end of the file).
 * `next` is where the following box starts; a box that runs past the file is truncation.
 */
export function isoBoxStep(header: Uint8Array, offset: number, fileSize: number): BoxStep {
  if (offset === fileSize) return { kind: "end" };
  if (fileSize - offset < 8)
    return { kind: "junk", detail: `${fileSize - offset} stray bytes at byte ${offset}` };
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const size32 = view.getUint32(0);
  const type = String.fromCharCode(...header.subarray(4, 8));
  if (!/^[\x20-\x7e]{4}$/.test(type)) return { kind: "junk", detail: `no box type at byte ${offset}` };
  let size: number;
  if (size32 === 1) {
    if (header.length < 16) return { kind: "truncated", detail: `a partial box header at byte ${offset}` };
    size = Number(view.getBigUint64(8));
  } else if (size32 === 0) {
    size = fileSize - offset; // "to the end of the file"
  } else size = size32;
  if (size < 8) return { kind: "corrupt", detail: `box '${type}' at byte ${offset} has size ${size}` };
  const next = offset + size;
  if (next > fileSize) {
    return {
      kind: "truncated",
      detail: `box '${type}' at byte ${offset} declares ${size} bytes, the file ends ${fileSize - offset} bytes in`,
    };
  }
  return { kind: "box", type, next };
}

/** The top-level boxes an MP4 needs: moov (the index) and, unless the file has no samples, mdat. */
export function isoBoxesComplete(types: readonly string[]): { ok: true } | { ok: false; detail: string } {
  if (!types.includes("moov")) return { ok: false, detail: "no moov box (the index is missing)" };
  return { ok: true };
}

/** An EBML variable-length integer: its value and length; `unknown` when all value bits are 1. */
export function readVint(
  b: Uint8Array,
  at: number,
): { value: number; length: number; unknown: boolean } | null {
  const first = b[at];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23; // leading zeros within the byte, plus one
  if (length > 8 || at + length > b.length) return null;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = b[at + i] ?? 0;
    value = value * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  return { value, length, unknown: allOnes };
}

const EBML_ID = [0x1a, 0x45, 0xdf, 0xa3];
const SEGMENT_ID = [0x18, 0x53, 0x80, 0x67];

/**
 * A Matroska/WebM file is the EBML header then one Segment whose size is declared up front (or
 * "unknown" when a live recorder could not seek back: nothing to check then). `head` is the file's
 * first bytes (64 are plenty: the EBML header is small).
 */
export function matroskaComplete(
  head: Uint8Array,
  fileSize: number,
): { ok: true } | { ok: false; truncated: boolean; detail: string } {
  if (!EBML_ID.every((v, i) => head[i] === v))
    return { ok: false, truncated: false, detail: "no EBML header" };
  const headerSize = readVint(head, 4);
  if (!headerSize || headerSize.unknown)
    return { ok: false, truncated: false, detail: "bad EBML header size" };
  const segAt = 4 + headerSize.length + headerSize.value;
  if (segAt + 4 > fileSize) return { ok: false, truncated: true, detail: "the file ends before its Segment" };
  if (segAt + 5 > head.length) return { ok: true }; // an unusually long header: ffprobe judges
  if (!SEGMENT_ID.every((v, i) => head[segAt + i] === v)) {
    return { ok: false, truncated: false, detail: "no Segment after the EBML header" };
  }
  const segSize = readVint(head, segAt + 4);
  // A size cut off by the end of the file (head holds the whole file then) is truncation.
  if (!segSize) return { ok: false, truncated: head.length >= fileSize, detail: "bad Segment size" };
  if (segSize.unknown) return { ok: true };
  const end = segAt + 4 + segSize.length + segSize.value;
  if (end > fileSize) {
    return {
      ok: false,
      truncated: true,
      detail: `the Segment declares ${end} bytes, the file has ${fileSize}`,
    };
  }
  return { ok: true };
}
