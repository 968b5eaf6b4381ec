import type { Logger } from "pino";
import sharp from "sharp";
import type { Config } from "../../config.ts";
import { ImagePool } from "./pool.ts";

/**
 * The image pool of one process: by default one child per slot that can run image work at once
 * here (job slots for the worker role, transform slots for the api role), so no task waits for a
 * child behind another one and a stuck child holds exactly the slot it was given.
 */
export function createImagePool(config: Config, logger: Logger): ImagePool {
  const worker = config.role === "all" || config.role === "worker";
  const api = config.role === "all" || config.role === "api";
  const slots = (worker ? config.jobs.concurrency : 0) + (api ? config.delivery.transformConcurrency : 0);
  return new ImagePool({
    size: config.imaging.workers || Math.max(1, slots),
    taskMemoryBytes: config.imaging.taskMemoryBytes,
    // The same libvips threads per task as the app set for itself.
    vipsConcurrency: sharp.concurrency(),
    childModule: config.imaging.childModule,
    logger,
  });
}
