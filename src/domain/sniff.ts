/**
 * Magic-byte sniffing: what the bytes are, whatever the client claimed. Pure.
 * Only the first 64 bytes are needed (HEIF/AVIF brands sit in the ftyp box at the start).
 */
export type Sniffed =
  | { kind: "image"; mime: string; format: ImageFormat }
  | { kind: "active"; mime: string }
  | { kind: "other"; mime: string | null };

export type ImageFormat =
  | "jpeg"
  | "png"
  | "gif"
  | "webp"
  | "avif"
  | "heic"
  | "bmp"
  | "tiff"
  | "jxl"
  | "ico"
  | "psd";

export const SNIFF_BYTES = 512;

const startsWith = (b: Uint8Array, sig: number[], at = 0) => sig.every((v, i) => b[at + i] === v);
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIC_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);

export function sniff(bytes: Uint8Array): Sniffed {
  const b = bytes;
  if (b.length === 0) return { kind: "other", mime: null };
  if (startsWith(b, [0xff, 0xd8, 0xff])) return image("image/jpeg", "jpeg");
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return image("image/png", "png");
  if (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a") return image("image/gif", "gif");
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") return image("image/webp", "webp");
  if (ascii(b, 4, 8) === "ftyp") {
    const boxSize = ((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0);
    const brands = [ascii(b, 8, 12)];
    for (let i = 16; i + 4 <= Math.min(boxSize, b.length); i += 4) brands.push(ascii(b, i, i + 4));
    if (brands.some((x) => AVIF_BRANDS.has(x))) return image("image/avif", "avif");
    if (brands.some((x) => HEIC_BRANDS.has(x))) return image("image/heic", "heic");
    return { kind: "other", mime: "video/mp4" };
  }
  if (ascii(b, 0, 2) === "BM") return image("image/bmp", "bmp");
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) {
    return image("image/tiff", "tiff");
  }
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return image("image/jxl", "jxl");
  }
  if (startsWith(b, [0, 0, 1, 0])) return image("image/x-icon", "ico");
  if (ascii(b, 0, 4) === "8BPS") return image("image/vnd.adobe.photoshop", "psd");
  if (ascii(b, 0, 5) === "%PDF-") return { kind: "other", mime: "application/pdf" };
  const markup = sniffMarkup(b);
  if (markup) return { kind: "active", mime: markup };
  return { kind: "other", mime: null };
}

function image(mime: string, format: ImageFormat): Sniffed {
  return { kind: "image", mime, format };
}

/** SVG, HTML and XML can carry script; browsers may render them as documents. */
function sniffMarkup(b: Uint8Array): string | null {
  let text = new TextDecoder("utf-8", { fatal: false }).decode(b.subarray(0, SNIFF_BYTES));
  text = text
    .replace(/^\uFEFF/, "")
    .trimStart()
    .toLowerCase();
  if (!text.startsWith("<")) return null;
  if (text.includes("<svg")) return "image/svg+xml";
  if (/^<(!doctype html|html|head|body|script|iframe|!--)/.test(text)) return "text/html";
  if (text.startsWith("<?xml")) return "application/xml";
  return "text/html";
}
