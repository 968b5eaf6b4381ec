/**
 * imgup as a deployment would run it: `imgup serve` in a process of its own, on the machine's
 * PostgreSQL (a fresh schema) and Redis (a fresh key prefix), limits raised so that they do not
 * cap a benchmark, logs off, and an API key made with `imgup keys create`.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { type Backends, dropNamespace, freshNamespace } from "./backends.ts";
import { onInterrupt } from "./cleanup.ts";
import { freePort, type ServerProcess, spawnServer } from "./server-process.ts";

const BIN = path.join(import.meta.dirname, "..", "..", "bin", "imgup.js");

export interface ImgupProcess extends ServerProcess {
  apiKey: string;
  /** Its PostgreSQL schema (DATABASE_SCHEMA). */
  schema: string;
  /** Where local storage keeps object bytes: `{objectsDir}/{p}/{id}/v/{spec}.{ext}`. */
  objectsDir: string;
  /** Signs on-the-fly transform URLs (IMGUP_SIGNING_SECRET). */
  signingSecret: string;
  /** Stops the process and removes its schema, Redis keys and data directory. */
  cleanup(): Promise<void>;
}

export interface ImgupProcessOptions {
  label: string;
  role: "all" | "api";
  backends: Backends;
  /** Extra configuration, e.g. the S3 variables. */
  env?: Record<string, string>;
  /** Node flags for the server, e.g. ["--cpu-prof"] to see where its time goes. */
  nodeArgs?: string[];
  /** Another checkout's `bin/imgup.js`, to compare two versions in one run (A/B). */
  bin?: string;
}

export async function startImgupProcess(opts: ImgupProcessOptions): Promise<ImgupProcess> {
  const ns = freshNamespace(opts.label);
  const dataDir = await mkdtemp(path.join(tmpdir(), `imgup-bench-${opts.label}-`));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const signingSecret = randomBytes(32).toString("hex");
  const env: Record<string, string | undefined> = {
    ...inheritedEnv(),
    DATABASE_URL: opts.backends.databaseUrl,
    DATABASE_SCHEMA: ns.schema,
    REDIS_URL: opts.backends.redisUrl,
    REDIS_KEY_PREFIX: ns.keyPrefix,
    IMGUP_DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: String(port),
    IMGUP_PUBLIC_URL: baseUrl,
    IMGUP_SIGNING_SECRET: signingSecret,
    IMGUP_DEV_KEY: "false",
    IMGUP_RATE_LIMIT_PER_SEC: "1000000",
    IMGUP_RATE_LIMIT_BURST: "1000000",
    IMGUP_TRANSFORM_MISSES_PER_SEC: "1000000",
    IMGUP_TRANSFORM_MISSES_BURST: "1000000",
    // The load comes from one owner: its miss budget would answer most cold requests with 429.
    IMGUP_TRANSFORM_OWNER_MISSES_PER_SEC: "1000000",
    IMGUP_TRANSFORM_OWNER_MISSES_BURST: "1000000",
    IMGUP_MAX_UPLOAD_BYTES: String(64 * 1024 * 1024),
    LOG_LEVEL: "silent",
    ...opts.env,
  };
  const removeAll = async () => {
    await dropNamespace(opts.backends, ns);
    await rm(dataDir, { recursive: true, force: true });
    forget();
  };
  const forget = onInterrupt(removeAll);
  let server: ServerProcess;
  let apiKey: string;
  try {
    // Migrating is an explicit step: the fresh schema first, then a key, then the server.
    await promisify(execFile)(process.execPath, [opts.bin ?? BIN, "migrate"], { env });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [opts.bin ?? BIN, "keys", "create", "--owner", "bench"],
      { env },
    );
    const key = stdout.split("\n").find((l) => l.startsWith("imgup_"));
    if (!key) throw new Error(`imgup keys create printed no key:\n${stdout}`);
    apiKey = key.trim();
    server = await spawnServer({
      name: `imgup (${opts.role})`,
      command: process.execPath,
      args: [...(opts.nodeArgs ?? []), opts.bin ?? BIN, "serve", "--role", opts.role],
      env,
      baseUrl,
      readyPath: "/readyz",
    });
  } catch (err) {
    await removeAll();
    throw err;
  }
  return {
    ...server,
    apiKey,
    schema: ns.schema,
    objectsDir: path.join(dataDir, "storage", "objects"),
    signingSecret,
    cleanup: async () => {
      try {
        await server.stop();
      } finally {
        await removeAll();
      }
    },
  };
}

/** The parent's environment minus anything that configures imgup, so only this file does. */
function inheritedEnv(): Record<string, string | undefined> {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(IMGUP_|S3_|DATABASE_|REDIS_|PORT$|HOST$|LOG_LEVEL$)/.test(name)) delete env[name];
  }
  return env;
}
