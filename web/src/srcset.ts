/**
 * Which preset variants a square gallery card may show, as an `<img srcset>`. The page learns the
 * presets' geometry from a `<meta name="imgup-presets">` the server writes into it (image URLs name
 * a preset, not its size; presets are configurable). Pure apart from readPresetGeometry.
 */

export interface PresetGeometry {
  w?: number;
  h?: number;
  fit: "cover" | "contain" | "inside" | "fill";
  dpr: number;
}

export type PresetGeometries = Record<string, PresetGeometry>;

export const PRESETS_META = "imgup-presets";

/** The geometry the server announced; empty (so: no srcset, only the thumbnail) when it did not. */
export function readPresetGeometry(doc: Document): PresetGeometries {
  const content = doc.querySelector<HTMLMetaElement>(`meta[name="${PRESETS_META}"]`)?.content;
  if (!content) return {};
  try {
    const parsed: unknown = JSON.parse(content);
    return parsed && typeof parsed === "object" ? (parsed as PresetGeometries) : {};
  } catch {
    return {};
  }
}

/**
 * The size a preset comes out at for a width × height image: the server's resize (sharp, never
 * enlarging). Without w and h the image keeps its size.
 */
export function presetOutput(p: PresetGeometry, width: number, height: number): { w: number; h: number } {
  const bw = p.w === undefined ? undefined : Math.round(p.w * p.dpr);
  const bh = p.h === undefined ? undefined : Math.round(p.h * p.dpr);
  if (bw === undefined && bh === undefined) return { w: width, h: height };
  if (bw !== undefined && bh !== undefined && p.fit !== "inside") {
    // cover, contain and fill make the box itself, cut down where the image is smaller.
    return { w: Math.min(bw, width), h: Math.min(bh, height) };
  }
  const scale = Math.min(1, bw === undefined ? 1 : bw / width, bh === undefined ? 1 : bh / height);
  return { w: Math.max(1, Math.round(width * scale)), h: Math.max(1, Math.round(height * scale)) };
}

/**
 * `url Nw, …` for a square slot showing the image with object-fit: cover. There the shorter side
 * spans the slot, so each candidate's descriptor is its shorter side (not its width): with
 * `sizes` = the slot's width, the browser then works out each candidate's real density and takes
 * the smallest that is sharp on this screen (a 200 px thumb on a 1x card, a larger one on 2x).
 * Candidates of equal size keep the first; null when fewer than two presets are usable.
 */
export function squareSrcset(
  presetUrls: Record<string, string>,
  geometry: PresetGeometries,
  width: number | null,
  height: number | null,
): string | null {
  if (!width || !height) return null;
  const candidates = new Map<number, string>();
  const sized = Object.entries(presetUrls)
    .filter(([name]) => Object.hasOwn(geometry, name))
    .map(([name, url]) => {
      const out = presetOutput(geometry[name] as PresetGeometry, width, height);
      return { url, side: Math.min(out.w, out.h) };
    })
    .sort((a, b) => a.side - b.side);
  for (const { url, side } of sized) if (!candidates.has(side)) candidates.set(side, url);
  if (candidates.size < 2) return null;
  return [...candidates].map(([side, url]) => `${url} ${side}w`).join(", ");
}
