import { HAS_ALPHA, OPAQUE_BACKGROUND } from "../formats.ts";
import { loaded, type Step } from "../pipeline.ts";

/**
 * Every variant is 8-bit sRGB: CMYK, 16-bit and wide-gamut inputs are converted with their
 * embedded profile (a generic one for CMYK without), and the output embeds no profile, since
 * browsers assume sRGB. 16-bit PNGs come out 8-bit.
 */
export const colour: Step = {
  name: "colour",
  run(ctx) {
    const { image } = loaded(ctx);
    ctx.image = image.toColourspace("srgb");
  },
};

/** JPEG has no alpha: composite onto white rather than let transparent pixels turn black. */
export const flatten: Step = {
  name: "flatten",
  run(ctx) {
    const { image, source } = loaded(ctx);
    if (source.hasAlpha && !HAS_ALPHA[ctx.spec.format]) {
      ctx.image = image.flatten({ background: OPAQUE_BACKGROUND });
    }
  },
};
