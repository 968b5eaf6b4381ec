/**
 * The SDK's behaviour scenarios, written once: vitest runs them in Node
 * (test/integration/client-sdk.test.ts) and a Chromium page runs the same bundle
 * (test/e2e/client-sdk.browser.test.ts). Each throws on failure.
 */
import {
  aPartFailingOnceIsRetried,
  aSecondClientResumesWithTheSameKey,
  retriesReuseOneIdempotencyKey,
} from "./failures.ts";
import { imagesCanBeReadChangedAndDeleted } from "./images.ts";
import type { ScenarioContext } from "./support.ts";
import {
  cancellingAbortsTheIntent,
  dedupOffKeepsSeparateImages,
  dedupSkipsTheUpload,
  multipartUploadBecomesReady,
  postUploadBecomesReady,
  putUploadBecomesReady,
  rejectedUploadThrowsTheReason,
} from "./uploads.ts";
import {
  uppySignRequestAbortRemovesTheUpload,
  uppySignRequestMultipartBecomesReady,
  uppySignRequestPutBecomesReady,
  uppyV5FunctionsUploadAForm,
  uppyV5FunctionsUploadPutAndMultipart,
} from "./uppy.ts";

export type { FixtureKind, ScenarioContext } from "./support.ts";
export { FIXTURES, PART_SIZE } from "./support.ts";

export const SCENARIOS = {
  putUploadBecomesReady,
  postUploadBecomesReady,
  multipartUploadBecomesReady,
  dedupSkipsTheUpload,
  dedupOffKeepsSeparateImages,
  rejectedUploadThrowsTheReason,
  cancellingAbortsTheIntent,
  aPartFailingOnceIsRetried,
  aSecondClientResumesWithTheSameKey,
  retriesReuseOneIdempotencyKey,
  imagesCanBeReadChangedAndDeleted,
  uppySignRequestPutBecomesReady,
  uppySignRequestMultipartBecomesReady,
  uppySignRequestAbortRemovesTheUpload,
  uppyV5FunctionsUploadPutAndMultipart,
  uppyV5FunctionsUploadAForm,
} satisfies Record<string, (ctx: ScenarioContext) => Promise<void>>;

export type ScenarioName = keyof typeof SCENARIOS;
