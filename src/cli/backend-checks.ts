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
  if (config.kv.redisUrl) await waitForRedis(config.kv.redisUrl);
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

/**
 * A client of its own, one connection attempt at a time: the store's client reconnects in the
 * background and reports only "unreachable", while this one sees ECONNREFUSED, WRONGPASS and such.
 */
async function waitForRedis(url: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const deadline = Date.now() + REDIS_START_WAIT_MS;
  let first: { problem: BackendProblem; err: unknown } | null = null;
  for (;;) {
    let seen: unknown = null;
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 2000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    client.on("error", (err: unknown) => {
      seen ??= err;
    });
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      const problem = classifyBackendError("redis", seen ?? err, { url });
      if (!first || (first.problem.cause === "unknown" && problem.cause !== "unknown"))
        first = { problem, err };
      if (problem.cause === "auth" || problem.cause === "invalid-url" || Date.now() >= deadline) {
        throw new BackendError(
          {
            ...first.problem,
            message: `${first.problem.message}${Date.now() >= deadline ? ` (gave up after ${REDIS_START_WAIT_MS / 1000} s)` : ""}`,
          },
          { cause: first.err },
        );
      }
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
