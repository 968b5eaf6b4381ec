import type { Imgup } from "../app.ts";
import {
  BackendError,
  type BackendProblem,
  checkBackendUrl,
  classifyBackendError,
} from "../backend-errors.ts";
import type { Config } from "../config.ts";

/** How long a starting process waits for Redis before it gives up naming REDIS_URL. */
const REDIS_START_WAIT_MS = 10_000;
/** The one HeadBucket at start. */
const STORAGE_CHECK_MS = 10_000;

/** URLs that cannot work, refused before anything connects (DATABASE_URL is checked where it is opened). */
export function checkUrls(config: Config): void {
  const bad =
    (config.kv.redisUrl ? checkBackendUrl("redis", config.kv.redisUrl) : null) ??
    (config.storage.driver === "s3" && config.storage.s3.endpoint
      ? checkBackendUrl("s3", config.storage.s3.endpoint)
      : null);
  if (bad) throw new BackendError(bad);
}

/**
 * Redis and the bucket, checked once at start so a wrong setting stops the process with one line
 * naming it, instead of a warning loop (Redis) or a silent start (S3). Redis gets a bounded wait:
 * it may be starting beside imgup (compose, systemd). Once running, an outage is handled as before.
 */
export async function checkBackends(imgup: Imgup): Promise<void> {
  const { config } = imgup;
  if (config.kv.redisUrl) await waitForRedis(imgup, config.kv.redisUrl);
  if (imgup.store.kind === "s3") {
    try {
      await imgup.store.ping(AbortSignal.timeout(STORAGE_CHECK_MS));
    } catch (err) {
      throw new BackendError(
        classifyBackendError("s3", err, {
          bucket: config.storage.s3.bucket,
          url: config.storage.s3.endpoint,
        }),
        { cause: err },
      );
    }
  }
}

async function waitForRedis(imgup: Imgup, url: string): Promise<void> {
  const deadline = Date.now() + REDIS_START_WAIT_MS;
  // The first failure is the telling one (ECONNREFUSED, WRONGPASS); later ones say "reconnecting".
  let first: { problem: BackendProblem; err: unknown } | null = null;
  for (;;) {
    try {
      await imgup.kv.ping();
      return;
    } catch (err) {
      const problem = classifyBackendError("redis", err, { url });
      if (!first || (first.problem.cause === "unknown" && problem.cause !== "unknown"))
        first = { problem, err };
      if (problem.cause === "auth" || Date.now() >= deadline) {
        throw new BackendError(
          {
            ...first.problem,
            message: `${first.problem.message} (gave up after ${REDIS_START_WAIT_MS / 1000} s)`,
          },
          { cause: first.err },
        );
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
