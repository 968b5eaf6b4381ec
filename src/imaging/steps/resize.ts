import { scaled } from "../../domain/transform-spec.ts";
import { HAS_ALPHA, OPAQUE_BACKGROUND, TRANSPARENT_BACKGROUND } from "../formats.ts";
import { loaded, type Step } from "../pipeline.ts";

/**
 * w and h times dpr, with the spec's fit. Never enlarges: an image smaller than the box comes out
 * at its own size (for cover/fill too), because upscaling costs bytes and shows nothing new.
 * A spec without w and h keeps the size.
 */
export const resize: Step = {
  name: "resize",
  run(ctx) {
    const { image } = loaded(ctx);
    const { spec } = ctx;
    const width = spec.width === undefined ? undefined : scaled(spec.width, spec.dpr);
    const height = spec.height === undefined ? undefined : scaled(spec.height, spec.dpr);
    if (width === undefined && height === undefined) return;
    ctx.image = image.resize({
      width,
      height,
      fit: spec.fit,
      withoutEnlargement: true,
      // fit=contain pads: transparent where the output keeps alpha, white where it cannot.
      background: HAS_ALPHA[spec.format] ? TRANSPARENT_BACKGROUND : OPAQUE_BACKGROUND,
    });
  },
};
