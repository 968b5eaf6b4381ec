import type { Logger } from "pino";
import type { ModerationSettings } from "../config.ts";
import type { ImagesRepository } from "../db/images-repository.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { type ModerationHook, reviewUrl } from "./moderation.ts";
import { ModerationDecisions } from "./moderation-decisions.ts";
import { ModerationGate } from "./moderation-gate.ts";
import { HttpModerationHook } from "./moderation-http-hook.ts";

/**
 * The moderation pieces from IMGUP_VALIDATION_*: the worker's gate (null without a hook URL) and
 * the decisions of the admin API and the callback. `hook` replaces the HTTP client (tests).
 */
export function createModeration(deps: {
  settings: ModerationSettings;
  publicUrl: string;
  images: ImagesRepository;
  store: ObjectStore;
  logger: Logger;
  metrics: Pick<Metrics, "moderation" | "imagesFinalized">;
  hook?: ModerationHook;
  now?: () => number;
}): { gate: ModerationGate | null; decisions: ModerationDecisions } {
  const { settings, logger, metrics, images, store } = deps;
  const now = deps.now ?? Date.now;
  const secret = settings.secret;
  const decisions = new ModerationDecisions(images, store, { secret, now }, logger, metrics);
  if (!settings.url || !secret) return { gate: null, decisions };
  const hook =
    deps.hook ?? new HttpModerationHook({ url: settings.url, secret, timeoutMs: settings.timeoutMs, now });
  const gate = new ModerationGate(
    hook,
    images,
    store,
    {
      failOpen: settings.failOpen,
      retryMs: settings.retryMs,
      reviewUrl: (id) => reviewUrl(deps.publicUrl, secret, id, settings.urlTtlSeconds, now()),
    },
    logger,
    metrics,
  );
  return { gate, decisions };
}
