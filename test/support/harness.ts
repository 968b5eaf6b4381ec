import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import pino from "pino";
import { createImgup, type Imgup } from "../../src/app.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import type { ImageWork } from "../../src/imaging/image-work.ts";
import type { JobQueue } from "../../src/jobs/job-queue.ts";
import { missingBackend } from "./backends.ts";
import { deleteByPrefix } from "./kv-targets.ts";
import { useTestBuild } from "./test-build.ts";

export interface DbTarget {
  name: "pglite" | "postgres";
  env: Record<string, string>;
  cleanup: () => Promise<void>;
}

/**
 * PGlite always; the real PostgreSQL too when DATABASE_URL is set (unset: a skipped test says so,
 * and in CI it is an error). Each target gets its own schema.
 */
export function dbTargets(): Array<{ name: "pglite" | "postgres"; make: () => DbTarget }> {
  const targets: Array<{ name: "pglite" | "postgres"; make: () => DbTarget }> = [
    { name: "pglite", make: () => ({ name: "pglite", env: {}, cleanup: async () => {} }) },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    targets.push({
      name: "postgres",
      make: () => {
        const schema = `t_${randomBytes(6).toString("hex")}`;
        return {
          name: "postgres",
          // A fresh schema per test: migrated at start, as `imgup migrate` would (off by default with DATABASE_URL).
          env: { DATABASE_URL: url, DATABASE_SCHEMA: schema, IMGUP_AUTO_MIGRATE: "true" },
          cleanup: async () => {
            const client = new pg.Client({ connectionString: url });
            await client.connect();
            await client.query(`drop schema if exists "${schema}" cascade`);
            await client.end();
          },
        };
      },
    });
  } else missingBackend("postgres", "DATABASE_URL");
  return targets;
}

/**
 * A port free right now. Drawn at random below Linux's ephemeral range (32768+), where the kernel
 * hands out the outgoing ports every test's Redis, PostgreSQL and fetch connections take, so the
 * gap between this check and the caller's listen is rarely lost; callers still retry on
 * EADDRINUSE (`withPortRetry`), since parallel test files draw from the same range.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Runs `start` on a free port, again on another if that one was taken before it listened. */
export async function withPortRetry<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (attempt >= 5 || !String((err as Error)?.message ?? err).includes("EADDRINUSE")) throw err;
    }
  }
}

export interface Running {
  imgup: Imgup;
  config: Config;
  baseUrl: string;
  /** An API key for owner "alice" and one for owner "bob". */
  alice: string;
  bob: string;
  stop: () => Promise<void>;
}

/**
 * Starts a real imgup on a free port with its own data directory and database schema.
 * `env` overrides configuration exactly as environment variables would.
 */
export async function startImgup(
  target: DbTarget,
  env: Record<string, string> = {},
  /**
   * kvClock: the KV's clock (a TestClock's `now`), for tests that meter rate limits exactly;
   * kvCommandTimeoutMs: a Redis command timeout a loaded machine cannot hit (else: fail open).
   */
  opts: {
    kvClock?: () => number;
    kvCommandTimeoutMs?: number;
    /** The webhook worker's clock (retries, disabling). */
    webhookClock?: () => number;
    /** Image work in place of the sandbox (tests gate transforms with it). */
    imageWork?: ImageWork;
  } = {},
): Promise<Running> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-test-"));
  return withPortRetry(async (port) => {
    const config = loadConfig({
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
      IMGUP_DEV_KEY: "false",
      IMGUP_JOB_POLL_MS: "50",
      // Every test database is fresh (its own schema): migrate it at start, as embedded mode does.
      IMGUP_AUTO_MIGRATE: "true",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      LOG_LEVEL: "silent",
      ...target.env,
      ...env,
    });
    await useTestBuild(config);
    const imgup = await createImgup(config, {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
      kvClock: opts.kvClock,
      kvCommandTimeoutMs: opts.kvCommandTimeoutMs,
      ...(opts.webhookClock ? { webhookClock: opts.webhookClock } : {}),
      ...(opts.imageWork ? { imageWork: opts.imageWork } : {}),
    });
    const alice = (await imgup.auth.createKey({ ownerId: "alice" })).key;
    const bob = (await imgup.auth.createKey({ ownerId: "bob" })).key;
    try {
      await imgup.start();
    } catch (err) {
      await imgup.stop().catch(() => undefined);
      throw err;
    }
    return {
      imgup,
      config,
      baseUrl: `http://127.0.0.1:${port}`,
      alice,
      bob,
      stop: async () => {
        await imgup.stop();
        await target.cleanup();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  });
}

/**
 * Polls until fn returns a value, or fails after timeoutMs. The default is generous on purpose: on
 * a loaded 2-core CI machine a condition that holds in 1 s unloaded can take far longer, and only
 * a condition that never holds should fail.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

/**
 * The job once it has left "running". An image turns ready (or rejected) a moment before its job is
 * marked done, so a test that reads the job right after the image settled races that write.
 */
export async function finishedJob(jobs: Pick<JobQueue, "get">, key: string, timeoutMs = 60_000) {
  return eventually(async () => {
    const job = await jobs.get(key);
    return job && job.status !== "running" ? job : undefined;
  }, timeoutMs);
}

export interface KvEnvTarget {
  name: "memory" | "redis";
  /** Configuration for imgup; instances given the same env share one Redis prefix. */
  env: Record<string, string>;
  /** Forgets everything under the prefix (a "flush" that spares other runs). */
  flush: () => Promise<void>;
}

/**
 * The in-process KV always; Redis too when REDIS_URL is set, under a prefix of its own (unset: a
 * skipped test says so, and in CI it is an error).
 */
export function kvEnvTargets(): Array<{ name: "memory" | "redis"; make: () => KvEnvTarget }> {
  const targets: Array<{ name: "memory" | "redis"; make: () => KvEnvTarget }> = [
    { name: "memory", make: () => ({ name: "memory", env: {}, flush: async () => {} }) },
  ];
  const url = process.env.REDIS_URL;
  if (url) {
    targets.push({
      name: "redis",
      make: () => {
        const prefix = `t:${randomBytes(6).toString("hex")}:`;
        return {
          name: "redis",
          env: { REDIS_URL: url, REDIS_KEY_PREFIX: prefix },
          flush: () => deleteByPrefix(url, prefix),
        };
      },
    });
  } else missingBackend("redis", "REDIS_URL");
  return targets;
}
