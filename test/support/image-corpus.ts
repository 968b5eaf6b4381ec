/**
 * Bad (and a few good) inputs, built in-process: every one must end as a clear verdict of the
 * worker, never a crash, a hang or unbounded memory. `expect` is what the worker (services/
 * processing.ts) concludes under CORPUS_POLICY. Used by the imaging tests and by the HTTP tests.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import type { RejectReason } from "../../src/domain/image.ts";
import {
  b,
  bmp,
  garbage,
  heicGridBomb,
  jpegClaiming,
  photo,
  pngClaiming,
  repeatLastGifFrame,
  scanBombJpeg,
  webpClaiming,
  zeroPng,
} from "./image-builders.ts";

export interface CorpusEntry {
  name: string;
  bytes: Buffer;
  /** The Content-Type the client claims. */
  declaredType: string;
  expect: `rejected:${RejectReason}` | "ready";
  /** A claimed SHA-256 (hex), when the entry is about a hash the bytes do not match. */
  declaredSha256?: string;
  /**
   * Also right: a cost bomb stopped by whichever bound it meets first, its deadline or its memory
   * limit, and which one that is depends on how fast the machine is at the time.
   */
  orElse?: `rejected:${RejectReason}`;
}

/** The upload defaults plus image/heic: the policy every `expect` above is judged under. */
export const CORPUS_POLICY = Object.freeze({
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 50_000_000,
  allowedTypes: ["image/jpeg", "image/png", "image/webp", "image/avif", "image/gif", "image/heic"],
  /** IMGUP_MAX_JPEG_SCANS's default. */
  maxJpegScans: 100,
  /**
   * IMGUP_IMAGE_TASK_MEMORY_MB for the corpus: an image child idles at ~150 MiB and every valid
   * entry stays far below this, while the HEIC grid bomb's decode needs ~300 MiB more.
   */
  taskMemoryBytes: 384 * 2 ** 20,
});

/** Transform specs that must be refused with invalid_spec. */
export const ABSURD_SPECS: readonly string[] = [
  "",
  "w_999999999",
  "h_99999999999999999999",
  "w_0",
  "q_0",
  "q_1000",
  "dpr_100",
  "dpr_0",
  "w_8192,dpr_2",
  "w_-100",
  "w_1e9",
  "w_NaN",
  "w_Infinity",
  "fit_crop",
  "f_svg",
  "w_100,w_100",
  "w_100,h_".padEnd(10_240, "9"),
  "%00",
  "w_100/../../x",
];

const FIXTURES = path.join(import.meta.dirname, "../fixtures/images");
const cut = (buf: Buffer, fraction: number) =>
  Buffer.from(buf.subarray(0, Math.floor(buf.length * fraction)));
const sha256 = (buf: Buffer) => createHash("sha256").update(buf).digest("hex");

let built: Promise<CorpusEntry[]> | null = null;

/** Built once per process (a few hundred milliseconds), then shared. */
export function imageCorpus(): Promise<CorpusEntry[]> {
  built ??= build();
  return built;
}

async function build(): Promise<CorpusEntry[]> {
  const jpeg = await photo(96, 64).jpeg().toBuffer();
  const png = await photo(96, 64).png().toBuffer();
  const pngAlpha = await photo(96, 64, 4).png().toBuffer();
  const png16 = await photo(96, 64).toColourspace("rgb16").png().toBuffer();
  const webp = await photo(96, 64).webp().toBuffer();
  const avif = await photo(96, 64).avif({ effort: 2 }).toBuffer();
  const progressive = await photo(96, 64).jpeg({ progressive: true }).toBuffer();
  const cmyk = await photo(96, 64).toColourspace("cmyk").jpeg().toBuffer();
  const exif = await photo(96, 64)
    .jpeg()
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 24/1" } })
    .toBuffer();
  const frame = (colour: string) =>
    sharp({ create: { width: 100, height: 100, channels: 3, background: colour } })
      .png()
      .toBuffer();
  const gif2 = await sharp([await frame("#c03020"), await frame("#2040c0")], { join: { animated: true } })
    .gif({ delay: [100, 100], loop: 0 })
    .toBuffer();
  const gif = await photo(96, 64).gif().toBuffer();
  const tiff = await photo(16, 16).tiff().toBuffer();
  const heic = readFileSync(path.join(FIXTURES, "quadrants.heic"));
  const heicAlpha = readFileSync(path.join(FIXTURES, "quadrants-alpha.heic"));
  const html = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
  const comment = b([0xff, 0xfe], [0, html.length + 2], html);
  const pngBadCrc = Buffer.from(png);
  const idat = pngBadCrc.indexOf("IDAT", 0, "latin1") + 10;
  pngBadCrc.writeUInt8((pngBadCrc.readUInt8(idat) ^ 0xff) & 0xff, idat);
  // Logical screen and first image descriptor both claim 65535x65535.
  const gifHuge = Buffer.from(gif);
  const descriptor = gifHuge.indexOf(
    0x2c,
    13 + ((gif[10] ?? 0) & 0x80 ? 3 * 2 ** (((gif[10] ?? 0) & 7) + 1) : 0),
  );
  for (const at of [6, 8, descriptor + 5, descriptor + 7]) gifHuge.writeUInt16LE(65535, at);
  // 49 MP of one colour: ~100 KB of PNG that is a full-size decode for whoever opens it.
  const flatPng = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: "#3a6" } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  // The container's ispe claims 7000x7000 for a 320x240 HEVC stream.
  const heicLying = Buffer.from(heic);
  const ispe = heicLying.indexOf("ispe", 0, "latin1");
  heicLying.writeUInt32BE(7000, ispe + 8);
  heicLying.writeUInt32BE(7000, ispe + 12);

  const E = (
    name: string,
    bytes: Buffer,
    declaredType: string,
    expect: CorpusEntry["expect"],
    extra: Partial<CorpusEntry> = {},
  ): CorpusEntry => ({ name, bytes, declaredType, expect, ...extra });

  return [
    // Valid, some of them unusual: these must become ready.
    E("jpeg", jpeg, "image/jpeg", "ready"),
    E("jpeg-progressive", progressive, "image/jpeg", "ready"),
    E("jpeg-cmyk", cmyk, "image/jpeg", "ready"),
    E("jpeg-exif-orientation-6-gps", exif, "image/jpeg", "ready"),
    E("png", png, "image/png", "ready"),
    E("png-alpha", pngAlpha, "image/png", "ready"),
    E("png-16bit", png16, "image/png", "ready"),
    E("webp", webp, "image/webp", "ready"),
    E("avif", avif, "image/avif", "ready"),
    E("gif-animated-2-frames", gif2, "image/gif", "ready"),
    E("heic", heic, "image/heic", "ready"),
    E("heic-alpha", heicAlpha, "image/heic", "ready"),
    // A valid JPEG that carries HTML in a comment and after EOI: it is an image (served as
    // image/jpeg with nosniff, and variants re-encode it), so it is accepted, not executed.
    E("polyglot-jpeg-html", b(jpeg.subarray(0, 2), comment, jpeg.subarray(2), html), "image/jpeg", "ready"),

    // Pixel bombs: refused from the header, before any decode.
    E(
      "png-bomb-ihdr-100000x100000",
      pngClaiming(png, 100_000, 100_000),
      "image/png",
      "rejected:too_many_pixels",
    ),
    E("png-bomb-10000x10000-zeros", zeroPng(10_000, 10_000), "image/png", "rejected:too_many_pixels"),
    E("jpeg-header-60mp", jpegClaiming(jpeg, 10_000, 6_000), "image/jpeg", "rejected:too_many_pixels"),
    E("gif-10000-frames", repeatLastGifFrame(gif2, 10_000), "image/gif", "rejected:too_many_pixels"),
    // Cost bombs: legal files whose decode costs far more than their size (issue 12). Refused by
    // structure before decoding, or bounded by the sandbox's deadline and memory limit.
    E("jpeg-scan-bomb-7000x7000-882-scans", scanBombJpeg(882), "image/jpeg", "rejected:too_complex"),
    E("png-flat-7000x7000", flatPng, "image/png", "ready"),
    E("heic-ispe-claims-7000x7000", heicLying, "image/heic", "rejected:corrupt"),
    // ~30 KB: a 7000x7000 grid of one 320x240 tile, repeated (~12 s and ~300 MiB of libheif WASM).
    E("heic-grid-bomb-7000x7000", heicGridBomb(heic, 7000, 7000), "image/heic", "rejected:too_complex", {
      orElse: "rejected:timeout",
    }),
    E("gif-65535x65535-screen", gifHuge, "image/gif", "rejected:too_many_pixels"),
    E("webp-16383x16383-header", webpClaiming(webp, 16383, 16383), "image/webp", "rejected:too_many_pixels"),

    // Not images at all, whatever they claim.
    E("zero-bytes", Buffer.alloc(0), "image/jpeg", "rejected:not_an_image"),
    E("garbage", garbage(4096, 7), "image/jpeg", "rejected:not_an_image"),
    E(
      "svg-with-script",
      b(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
      "image/svg+xml",
      "rejected:not_an_image",
    ),
    E(
      "svg-declared-png",
      b(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`),
      "image/png",
      "rejected:not_an_image",
    ),
    E("html-named-jpg", b(html), "image/jpeg", "rejected:not_an_image"),
    E("html-then-jpeg", b(html, jpeg), "image/jpeg", "rejected:not_an_image"),
    E(
      "xml",
      b(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`),
      "image/png",
      "rejected:not_an_image",
    ),
    E(
      "pdf",
      b("%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"),
      "image/jpeg",
      "rejected:not_an_image",
    ),
    E(
      "mp4-ftyp-isom",
      b([0, 0, 0, 0x20], "ftypisom", [0, 0, 2, 0], "isomiso2avc1mp41", [0, 0, 0, 8], "free"),
      "image/jpeg",
      "rejected:not_an_image",
    ),
    E("gzip", deflateSync(png), "image/png", "rejected:not_an_image"),
    E("zip", b("PK\x03\x04", garbage(64, 3)), "image/jpeg", "rejected:not_an_image"),
    E("elf", b("\x7fELF\x02\x01\x01", Buffer.alloc(57)), "image/jpeg", "rejected:not_an_image"),

    // Images of formats the service does not take.
    E("bmp", bmp(4, 4), "image/bmp", "rejected:unsupported_format"),
    E("tiff", tiff, "image/tiff", "rejected:unsupported_format"),
    E(
      "ico",
      b(
        [0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0],
        [png.length & 0xff, png.length >> 8, 0, 0],
        [22, 0, 0, 0],
        png,
      ),
      "image/x-icon",
      "rejected:unsupported_format",
    ),
    E(
      "psd-header",
      b("8BPS", [0, 1], Buffer.alloc(32)),
      "image/vnd.adobe.photoshop",
      "rejected:unsupported_format",
    ),
    E("jxl-codestream", b([0xff, 0x0a], garbage(32, 5)), "image/jxl", "rejected:unsupported_format"),

    // Real images under a false name.
    E("png-declared-jpeg", png, "image/jpeg", "rejected:type_mismatch"),
    E("jpeg-declared-webp", jpeg, "image/webp", "rejected:type_mismatch"),
    E("heic-declared-jpeg", heic, "image/jpeg", "rejected:type_mismatch"),

    // Right bytes, wrong claim about them; too many of them.
    E("png-hash-mismatch", png, "image/png", "rejected:hash_mismatch", { declaredSha256: sha256(jpeg) }),
    E(
      "jpeg-over-20mib",
      b(jpeg, Buffer.alloc(CORPUS_POLICY.maxBytes + 1 - jpeg.length)),
      "image/jpeg",
      "rejected:too_large",
    ),

    // Broken images: the header may read, the pixels do not.
    E("jpeg-truncated", cut(jpeg, 0.6), "image/jpeg", "rejected:corrupt"),
    // The validation decode of a JPEG runs at 1/8 scale: every block is still entropy-decoded.
    E("jpeg-truncated-last-blocks", cut(jpeg, 0.99), "image/jpeg", "rejected:corrupt"),
    E("jpeg-progressive-truncated", cut(progressive, 0.8), "image/jpeg", "rejected:corrupt"),
    E("jpeg-header-only", cut(jpeg, 0.1), "image/jpeg", "rejected:corrupt"),
    E("jpeg-soi-eoi-only", b([0xff, 0xd8, 0xff, 0xd9]), "image/jpeg", "rejected:corrupt"),
    E("png-truncated", cut(png, 0.6), "image/png", "rejected:corrupt"),
    E("png-bad-crc", pngBadCrc, "image/png", "rejected:corrupt"),
    E("png-zero-width", pngClaiming(png, 0, 64), "image/png", "rejected:corrupt"),
    E("gif-truncated", cut(gif, 0.5), "image/gif", "rejected:corrupt"),
    E("webp-truncated", cut(webp, 0.6), "image/webp", "rejected:corrupt"),
    E("webp-riff-only", b("RIFF", [4, 0, 0, 0], "WEBP"), "image/webp", "rejected:corrupt"),
    E("avif-truncated", cut(avif, 0.6), "image/avif", "rejected:corrupt"),
    E("heic-truncated", cut(heic, 0.6), "image/heic", "rejected:corrupt"),
    E(
      "heic-ftyp-only",
      b([0, 0, 0, 0x18], "ftypheic", [0, 0, 0, 0], "mif1heic"),
      "image/heic",
      "rejected:corrupt",
    ),
  ];
}
