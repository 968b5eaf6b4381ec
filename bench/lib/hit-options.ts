/**
 * The command-line options of the cached-hit benchmarks (cached-variant, varnish-hit): the same
 * load shape, so their figures compare.
 */
export const HIT_OPTIONS = {
  seconds: { type: "string", default: "5" },
  rounds: { type: "string", default: "3" },
  connections: { type: "string", default: "32" },
  images: { type: "string", default: "20" },
  write: { type: "boolean" },
} as const;

export const IMMUTABLE = "public, max-age=31536000, immutable";
/** The default eager preset "thumb". */
export const THUMB = "w_200,h_200,fit_cover,f_webp";

export function hitLoad(values: { seconds: string; rounds: string; connections: string; images: string }) {
  return {
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    connections: Number(values.connections),
    imageCount: Number(values.images),
  };
}
