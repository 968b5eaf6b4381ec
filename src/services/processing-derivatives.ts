import type { Logger } from "pino";
import type { ImageRecord } from "../domain/image.ts";
import type { Presets } from "../domain/presets.ts";
import { type ImageWork, imageVerdict, isResourceVerdict } from "../imaging/image-work.ts";
import type { VariantsService } from "./variants.ts";

/**
 * The image work of one job shares one deadline, counted in time the tasks actually ran: starting
 * a child process (a second or more on a loaded machine) is not charged to the upload.
 */
export interface WorkBudget {
  timeoutMs: number;
  usedMs: number;
  signal?: AbortSignal;
}

/**
 * Work done on a valid original before it turns ready: eager presets and the placeholder. An
 * image-work verdict they throw (unprocessable_image with a reason) rejects the upload.
 */
export interface Derivatives {
  placeholder(original: Buffer, budget: WorkBudget): Promise<string | null>;
  eager(image: ImageRecord, original: Buffer, budget: WorkBudget): Promise<void>;
}

/** The next task's share of a job's budget: what is left (at least 1 ms, so an exhausted budget fails as a timeout). */
export function taskOptions(budget: WorkBudget) {
  return {
    timeoutMs: Math.max(1, budget.timeoutMs - budget.usedMs),
    signal: budget.signal,
    onRan: (ms: number) => {
      budget.usedMs += ms;
    },
  };
}

/**
 * The derivatives of a processing job: eager presets through the variants service and the
 * ThumbHash, both in the image sandbox within the job's budget. A placeholder that fails on its
 * content is left out (null); one over the deadline or memory bound rejects the upload like any
 * other step of the same decode.
 */
export function processingDerivatives(opts: {
  variants: Pick<VariantsService, "generate">;
  work: ImageWork;
  presets: Presets;
  eagerPresets: readonly string[];
  limits: { maxPixels: number; maxJpegScans: number };
  log: Logger;
}): Derivatives {
  const { variants, work, presets, limits, log } = opts;
  return {
    async placeholder(original, budget) {
      try {
        return await work.thumbhash(original, limits, taskOptions(budget));
      } catch (err) {
        if (budget.signal?.aborted || isResourceVerdict(err) || !imageVerdict(err)) throw err;
        log.warn({ err: String(err) }, "no placeholder");
        return null;
      }
    },
    async eager(image, original, budget) {
      // A profile's own list replaces the deployment's (e.g. avatar_96 for avatars only).
      for (const name of image.profileLimits?.eagerPresets ?? opts.eagerPresets) {
        const spec = Object.hasOwn(presets, name) ? presets[name] : undefined;
        if (!spec) continue;
        // f_auto is negotiated per request; WebP is what nearly every browser will ask for.
        const format = spec.format === "auto" ? "webp" : spec.format;
        await variants.generate(image, original, spec, format, taskOptions(budget));
      }
    },
  };
}
