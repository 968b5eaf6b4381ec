import type { OutputFormat, TransformSpec } from "../domain/transform-spec.ts";

/** Formats every browser shows; an original in one of these may be served back in its own format. */
const WEB_FORMATS = new Set<string>(["jpeg", "png", "gif"]);

/**
 * `f_auto` collapses to one concrete format before the cache key is made: AVIF when Accept lists
 * image/avif, else WebP when it lists image/webp, else the original's format when browsers show it,
 * else JPEG (PNG when the caller knows the image has alpha). Only explicit entries count, because
 * `image/*` and `*\/*` are sent by clients that cannot show AVIF or WebP; `q=0` means "not this".
 */
export function negotiateFormat(
  requested: TransformSpec["format"],
  accept: string | undefined,
  original: string,
  hints: { hasAlpha?: boolean } = {},
): { format: OutputFormat; negotiated: boolean } {
  if (requested !== "auto") return { format: requested, negotiated: false };
  const accepted = acceptedTypes(accept);
  if (accepted.has("image/avif")) return { format: "avif", negotiated: true };
  if (accepted.has("image/webp")) return { format: "webp", negotiated: true };
  const own = original.toLowerCase() === "jpg" ? "jpeg" : original.toLowerCase();
  if (WEB_FORMATS.has(own)) return { format: own as OutputFormat, negotiated: true };
  return { format: hints.hasAlpha ? "png" : "jpeg", negotiated: true };
}

/** Media types named with a non-zero q. Header values are bounded by the HTTP server. */
function acceptedTypes(accept: string | undefined): Set<string> {
  const out = new Set<string>();
  const refused = new Set<string>();
  if (!accept) return out;
  for (const range of accept.split(",")) {
    const [type, ...params] = range.split(";").map((s) => s.trim().toLowerCase());
    if (!type) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*(.*)$/.exec(p);
      // A malformed weight counts as a refusal: never bet on AVIF from a garbled header.
      if (m) q = /^[0-9.]+$/.test(m[1] ?? "") ? Number(m[1]) : 0;
    }
    if (Number.isNaN(q) || q <= 0) refused.add(type);
    else out.add(type);
  }
  for (const type of refused) out.delete(type);
  return out;
}
