/** Client filenames are data, never paths: keep the last segment, drop control characters. */
export function sanitizeFilename(raw: string): string {
  const last = raw.split(/[\\/]/).pop() ?? "";
  const printable = [...last].filter((ch) => {
    const c = ch.charCodeAt(0);
    return c >= 0x20 && c !== 0x7f;
  });
  return printable.join("").trim().slice(0, 255);
}

/** RFC 6266 / 5987: an ASCII fallback plus the exact UTF-8 name. */
export function contentDisposition(filename: string, type: "inline" | "attachment" = "inline"): string {
  const fallback = filename.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
