/**
 * Control and invisible format characters: C0/C1 controls, bidi overrides and isolates (U+202E
 * makes "gpj.exe" display as "exe.jpg"), zero-width characters, line and paragraph separators.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** Client filenames are data, never paths: keep the last segment, drop invisible characters. */
export function sanitizeFilename(raw: string): string {
  const last = raw.split(/[\\/]/).pop() ?? "";
  return last.replace(INVISIBLE, "").trim().slice(0, 255);
}

/**
 * RFC 6266 / 5987: an ASCII fallback plus the exact UTF-8 name. Sanitised again here: names stored
 * before the current rules must not reach a download dialog either.
 */
export function contentDisposition(filename: string, type: "inline" | "attachment" = "inline"): string {
  const clean = sanitizeFilename(filename) || "image";
  const fallback = clean.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  const encoded = encodeURIComponent(clean).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
