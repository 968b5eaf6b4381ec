import { ERRORS } from "../domain/errors.ts";
import { countJpegScans } from "../domain/jpeg-structure.ts";

/** A detail line when the JPEG has more scans than `max`, else null (no limit: null). */
export function jpegScansOver(input: Buffer, max: number | undefined): string | null {
  if (max === undefined) return null;
  const { scans } = countJpegScans(input, max);
  return scans > max ? `more than ${max} JPEG scans (each one a pass over every block)` : null;
}

/** Throws unprocessable_image (reason too_complex) for a JPEG with more scans than `max`. */
export function checkJpegScans(input: Buffer, max: number | undefined): void {
  const detail = jpegScansOver(input, max);
  if (detail) throw ERRORS.unprocessableImage(detail, { extra: { reason: "too_complex" } });
}
