import type { Sharp } from "sharp";
import { ERRORS } from "../../domain/errors.ts";
import type { OutputFormat } from "../../domain/transform-spec.ts";
import { loaded, remainingSeconds, type Step, sharpMessage } from "../pipeline.ts";

/**
 * Encoder settings (docs/architecture.md "Defaults worth keeping"). AVIF effort 2 with 4:2:0 keeps a 1280-px
 * encode well under a second here; effort 4 costs 4-5 s. PNG and GIF ignore the spec's quality.
 */
export const ENCODERS: Readonly<Record<OutputFormat, (image: Sharp, quality: number | undefined) => Sharp>> =
  {
    jpeg: (img, q) => img.jpeg({ quality: q ?? 80, progressive: true, mozjpeg: false }),
    png: (img) => img.png({ compressionLevel: 6, adaptiveFiltering: false }),
    webp: (img, q) => img.webp({ quality: q ?? 79, effort: 4 }),
    avif: (img, q) => img.avif({ quality: q ?? 63, effort: 2, chromaSubsampling: "4:2:0" }),
    gif: (img) => img.gif(),
  };

/**
 * Runs the pipeline. Metadata is stripped here by omission: sharp writes no EXIF, XMP, IPTC or ICC
 * unless asked to (keepMetadata/withMetadata), and nothing in this pipeline asks, so GPS and camera
 * data never reach a variant. sharp cannot be cancelled mid-run; its timeout bounds the work and an
 * abort stops the wait.
 */
export const encode: Step = {
  name: "encode",
  async run(ctx) {
    const { image } = loaded(ctx);
    const encoder = ENCODERS[ctx.spec.format];
    const pipeline = encoder(image, ctx.spec.quality).timeout({ seconds: remainingSeconds(ctx) });
    let result: Awaited<ReturnType<typeof toBuffer>>;
    try {
      result = await abortable(toBuffer(pipeline), ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted && err === ctx.signal.reason) throw err;
      const msg = sharpMessage(err);
      const reason = /pixel limit/i.test(msg)
        ? "too_many_pixels"
        : /timeout/i.test(msg)
          ? "timeout"
          : "corrupt";
      throw ERRORS.unprocessableImage(`does not decode or encode: ${msg}`, { extra: { reason } });
    }
    const { data, info } = result;
    ctx.output = { data, width: info.width, height: info.pageHeight ?? info.height };
  },
};

function toBuffer(pipeline: Sharp) {
  return pipeline.toBuffer({ resolveWithObject: true });
}

function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
