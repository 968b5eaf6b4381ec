/**
 * A JPEG's segment structure, read without decoding any entropy-coded data. Progressive JPEGs may
 * hold thousands of tiny scans (each an EOB run over the whole image), and libjpeg walks every
 * coefficient of the frame for every scan: a 300 KB file can cost minutes of decode. Counting SOS
 * markers is cheap and tells such a file apart before any decoder sees it. Pure: no I/O.
 */

export interface JpegScanCount {
  /** SOS markers seen, counting stops one past `limit`. */
  scans: number;
  /** The walk reached EOI (false: truncated or stopped at the limit). */
  complete: boolean;
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

const isRst = (m: number) => m >= 0xd0 && m <= 0xd7;

/**
 * Counts the scans of a JPEG, stopping as soon as there are more than `limit`. Inside scan data a
 * 0xFF is followed by 0x00 (a stuffed byte), a restart marker, or fill bytes; anything else is
 * the next marker. Bytes that are not a JPEG count zero scans.
 */
export function countJpegScans(bytes: Uint8Array, limit = Number.POSITIVE_INFINITY): JpegScanCount {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return { scans: 0, complete: false };
  let scans = 0;
  let i = 2;
  while (i < n) {
    // Find the next marker: 0xFF, any fill 0xFFs, then the marker code.
    if (bytes[i] !== 0xff) {
      const next = bytes.indexOf(0xff, i);
      if (next < 0) break;
      i = next;
    }
    while (i < n && bytes[i] === 0xff) i++;
    if (i >= n) break;
    const marker = bytes[i] as number;
    i++;
    if (marker === EOI) return { scans, complete: true };
    if (marker === 0x00 || marker === TEM || isRst(marker) || marker === SOI) continue;
    if (i + 2 > n) break;
    const length = ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
    if (length < 2) break;
    i += length;
    if (marker !== SOS) continue;
    scans++;
    if (scans > limit) return { scans, complete: false };
    i = skipEntropyData(bytes, i);
  }
  return { scans, complete: false };
}

/** The offset of the marker that ends the entropy-coded segment starting at `from` (or the end). */
function skipEntropyData(bytes: Uint8Array, from: number): number {
  const n = bytes.length;
  let i = from;
  while (i < n) {
    const ff = bytes.indexOf(0xff, i);
    if (ff < 0 || ff + 1 >= n) return n;
    const next = bytes[ff + 1] as number;
    if (next === 0x00 || isRst(next)) {
      i = ff + 2;
    } else if (next === 0xff) {
      // Fill bytes before a marker: look again from the last 0xFF.
      i = ff + 1;
    } else {
      return ff;
    }
  }
  return n;
}
