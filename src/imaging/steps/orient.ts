import { loaded, type Step } from "../pipeline.ts";

/**
 * Bakes the EXIF orientation into the pixels. The output carries no EXIF (see encode), so a
 * viewer could not apply it later: without this step a portrait photo would come out sideways.
 */
export const orient: Step = {
  name: "orient",
  run(ctx) {
    const { image, source } = loaded(ctx);
    if (source.orientation > 1) ctx.image = image.autoOrient();
  },
};
