import { rgbaToThumbHash } from "thumbhash";
import { ERRORS } from "../domain/errors.ts";
import {
  loaded,
  type ResolvedSpec,
  runPipeline,
  type Step,
  sharpMessage,
  type TransformContext,
} from "./pipeline.ts";
import { colour } from "./steps/colour.ts";
import { load } from "./steps/load.ts";
import { orient } from "./steps/orient.ts";
import { resize } from "./steps/resize.ts";

/** ThumbHash takes at most 100x100; PNG as the nominal output keeps alpha through the resize. */
const THUMB: ResolvedSpec = Object.freeze({ width: 100, height: 100, fit: "inside", format: "png", dpr: 1 });
const DEFAULT_MAX_PIXELS = 50_000_000;

const rgba: Step = {
  name: "rgba",
  async run(ctx) {
    const { image } = loaded(ctx);
    try {
      const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      ctx.output = { data, width: info.width, height: info.height };
    } catch (err) {
      throw ERRORS.unprocessableImage(`does not decode: ${sharpMessage(err)}`, {
        extra: { reason: "corrupt" },
      });
    }
  },
};

/** The same steps as a variant, ending in raw RGBA instead of an encoder. */
const STEPS: readonly Step[] = [load, orient, resize, colour, rgba];

/**
 * A base64 ThumbHash (~25-35 bytes) of any image the pipeline decodes, HEIC included: a blurred
 * placeholder, with alpha and aspect ratio, that a client renders before the real image arrives.
 */
export async function thumbhashOf(
  input: Buffer,
  opts: { maxPixels?: number; maxJpegScans?: number } = {},
): Promise<string> {
  const ctx: TransformContext = {
    input,
    spec: THUMB,
    maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
    maxJpegScans: opts.maxJpegScans,
    animated: false,
    deadline: Date.now() + 30_000,
    signal: undefined,
  };
  await runPipeline(STEPS, ctx);
  if (!ctx.output) throw new Error("pipeline: no output");
  const { data, width, height } = ctx.output;
  return Buffer.from(rgbaToThumbHash(width, height, data)).toString("base64");
}
