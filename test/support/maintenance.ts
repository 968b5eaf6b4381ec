import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { JobRunner } from "../../src/jobs/job-runner.ts";
import {
  createMaintenance,
  DEFAULT_MAINTENANCE_SETTINGS,
  type Maintenance,
  type MaintenanceSettings,
} from "../../src/services/maintenance.ts";
import { imgupCli } from "./cli-run.ts";
import type { Running } from "./harness.ts";

/** The consistency jobs wired onto a running imgup's own adapters, with test-sized grace periods. */
export function maintenanceFor(run: Running, settings: Partial<MaintenanceSettings> = {}): Maintenance {
  const { imgup } = run;
  return createMaintenance({
    db: imgup.database.db,
    store: imgup.store,
    kv: imgup.kv,
    jobs: imgup.jobs,
    logger: imgup.logger,
    leaseMs: imgup.config.jobs.leaseMs,
    settings: { ...DEFAULT_MAINTENANCE_SETTINGS, ...settings },
  });
}

/** A worker for the maintenance job kinds (delete-image-objects, purge-owner-images) in this process. */
export function maintenanceWorker(run: Running, m: Maintenance): JobRunner {
  const runner = new JobRunner({
    queue: run.imgup.jobs,
    handlers: m.jobHandlers,
    concurrency: 2,
    leaseMs: 30_000,
    pollIntervalMs: 50,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  });
  runner.start();
  return runner;
}

export async function imageStatus(run: Running, id: string): Promise<string | null> {
  const row = await run.imgup.database.db
    .selectFrom("images")
    .select("status")
    .where("id", "=", id)
    .executeTakeFirst();
  return row?.status ?? null;
}

/** Every key in the storage (all pages). */
export async function listAll(run: Running, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await run.imgup.store.list(prefix, { cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.nextCursor;
  } while (cursor);
  return keys;
}

export interface WorkerProcess {
  pid: number;
  output: () => string;
  /** Keys of the jobs this process started (from its "job started" log lines). */
  started: Set<string>;
  exited: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

/** `imgup serve --role worker` as a real child process on the same database and bucket. */
export async function spawnWorker(run: Running, env: Record<string, string>): Promise<WorkerProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-worker-"));
  const { database } = run.config;
  const child = spawn(process.execPath, [imgupCli(), "serve", "--role", "worker"], {
    cwd: path.resolve(import.meta.dirname, "../.."),
    env: {
      PATH: process.env.PATH ?? "",
      IMGUP_DATA_DIR: dataDir,
      DATABASE_URL: database.url ?? "",
      DATABASE_SCHEMA: database.schema,
      IMGUP_DEV_KEY: "false",
      IMGUP_SIGNING_SECRET: run.config.signingSecret ?? "",
      // The instance's KV when it has Redis (the outage buffer and heartbeats are shared there).
      ...(run.config.kv.redisUrl
        ? { REDIS_URL: run.config.kv.redisUrl, REDIS_KEY_PREFIX: run.config.kv.keyPrefix }
        : { IMGUP_SINGLE_INSTANCE: "true" }),
      LOG_LEVEL: "debug",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let partial = "";
  const started = new Set<string>();
  child.stdout.on("data", (d) => {
    out = (out + d).slice(-20_000);
    const lines = (partial + d).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.includes('"job started"')) continue;
      const key = (JSON.parse(line) as { key?: string }).key;
      if (key) started.add(key);
    }
  });
  child.stderr.on("data", (d) => {
    out = (out + d).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      void rm(dataDir, { recursive: true, force: true });
      resolve(code);
    });
  });
  if (child.pid === undefined) throw new Error("could not spawn a worker");
  return { pid: child.pid, output: () => out, started, exited, kill: (s) => child.kill(s) };
}
