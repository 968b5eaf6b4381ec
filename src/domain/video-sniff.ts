/**
 * Magic bytes of the video containers imgup accepts, beside sniff.ts (which knows images and
 * calls any non-HEIF `ftyp` file "video/mp4" without looking further). Pure; 64 bytes suffice.
 */
export type SniffedVideo =
  | {
      family: "isobmff";
      /** The ftyp major brand ("isom", "mp42", "qt  "), or null for a QuickTime file without ftyp. */
      brand: string | null;
      /** QuickTime proper (brand "qt  " or a legacy first atom), not an MP4. */
      quicktime: boolean;
    }
  | { family: "matroska"; docType: string | null };

export const VIDEO_SNIFF_BYTES = 64;

const ascii = (b: Uint8Array, from: number, to: number) =>
  String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));

// Image brands of the same box format: an AVIF or HEIC is not a video whatever its extension.
const IMAGE_BRANDS = new Set([
  "avif",
  "avis",
  "heic",
  "heix",
  "hevc",
  "hevx",
  "heim",
  "heis",
  "mif1",
  "msf1",
]);
// Old QuickTime files start with one of these atoms instead of ftyp.
const LEGACY_QT_ATOMS = new Set(["moov", "mdat", "wide", "free", "skip", "pnot"]);

export function sniffVideo(bytes: Uint8Array): SniffedVideo | null {
  const b = bytes;
  if (b.length < 12) return null;
  const size = (((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0)) >>> 0;
  const type = ascii(b, 4, 8);
  if (type === "ftyp") {
    if (size < 16) return null;
    const major = ascii(b, 8, 12);
    const compatible: string[] = [];
    for (let i = 16; i + 4 <= Math.min(size, b.length); i += 4) compatible.push(ascii(b, i, i + 4));
    // A HEIF image names its image brand as major or compatible brand; a video never does.
    if (
      IMAGE_BRANDS.has(major) ||
      (compatible.some((x) => IMAGE_BRANDS.has(x)) && !hasVideoBrand(compatible))
    )
      return null;
    return { family: "isobmff", brand: major, quicktime: major === "qt  " };
  }
  // A legacy atom has a plausible size (8 bytes of header at least, or 1 = 64-bit size follows).
  if (LEGACY_QT_ATOMS.has(type) && (size === 1 || size >= 8)) {
    return { family: "isobmff", brand: null, quicktime: true };
  }
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) {
    return { family: "matroska", docType: ebmlDocType(b) };
  }
  return null;
}

function hasVideoBrand(brands: string[]): boolean {
  return brands.some((x) => /^(iso[2-9m]|mp4[12]|avc1|dash|M4V |qt {2})$/.test(x));
}

/**
 * The EBML header's DocType ("webm" or "matroska"). The header is a handful of small elements, so
 * the DocType element (ID 0x4282) sits within the first bytes; its size is a one-byte vint there.
 */
function ebmlDocType(b: Uint8Array): string | null {
  for (let i = 4; i + 3 < b.length; i++) {
    if (b[i] !== 0x42 || b[i + 1] !== 0x82) continue;
    const sizeByte = b[i + 2] ?? 0;
    if ((sizeByte & 0x80) === 0) return null;
    const len = sizeByte & 0x7f;
    if (len === 0 || len > 16) return null;
    const text = ascii(b, i + 3, i + 3 + len).replace(/\0+$/, "");
    return /^[a-z]+$/.test(text) ? text : null;
  }
  return null;
}
