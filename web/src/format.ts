const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1536 → "1.5 KB" (decimal-ish display with binary steps, as file managers show sizes). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** A reject reason code (README: upload_rejected reasons) as a sentence a user understands. */
export function rejectReasonText(reason: string | null | undefined): string {
  switch (reason) {
    case "not_an_image":
      return "This file is not an image.";
    case "unsupported_format":
      return "This image format is not supported.";
    case "type_mismatch":
      return "The file's contents do not match its type.";
    case "too_many_pixels":
      return "The image has too many pixels.";
    case "too_large":
      return "The file is larger than the upload limit.";
    case "hash_mismatch":
      return "The file changed or was damaged during the upload.";
    case "corrupt":
      return "The image is damaged and cannot be read.";
    default:
      return "The image was rejected.";
  }
}

/** "14:32" (today) or a short date: when a signed link stops working. */
export function formatExpiry(date: Date): string {
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
