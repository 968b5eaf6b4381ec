import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { imgupCli } from "./cli-run.ts";
import { eventually, withPortRetry } from "./harness.ts";

/**
 * `imgup serve` (every role, embedded storage, PGlite) as a real child process: a crash there is
 * an exit the test sees, where an in-process crash would take the test runner down with it.
 */
export interface ServeChild {
  baseUrl: string;
  port: number;
  /** The dev API key (owner "dev"). */
  apiKey: string;
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  output: () => string;
  /** Null while running; the exit code (or signal) once it exited. */
  exit: () => { code: number | null; signal: NodeJS.Signals | null } | null;
  stop: () => Promise<void>;
}

export function startServeChild(extraEnv: Record<string, string> = {}): Promise<ServeChild> {
  return withPortRetry((port) => startOnPort(port, extraEnv));
}

async function startOnPort(port: number, extraEnv: Record<string, string>): Promise<ServeChild> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-hostile-"));
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [imgupCli(), "serve"], {
    cwd: path.resolve(import.meta.dirname, "../.."),
    env: {
      PATH: process.env.PATH ?? "",
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: baseUrl,
      IMGUP_DEV_KEY: "true",
      IMGUP_DEMO_PAGE: "false",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_JOB_POLL_MS: "100",
      LOG_LEVEL: "info",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  let out = "";
  let partial = "";
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  child.once("exit", (code, signal) => {
    exited = { code, signal };
  });
  child.stdout?.on("data", (d: Buffer) => {
    out = (out + d).slice(-100_000);
    const parts = (partial + d).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (!line.startsWith("{")) continue;
      try {
        lines.push(JSON.parse(line));
      } catch {
        // a line cut by the process exit
      }
    }
  });
  child.stderr?.on("data", (d: Buffer) => {
    out = (out + d).slice(-100_000);
  });
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await gone;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      if (exited) throw new Error(`imgup serve exited: ${JSON.stringify(exited)}`);
      return (await fetch(`${baseUrl}/healthz`).catch(() => null))?.ok;
    }, 90_000);
  } catch (err) {
    await stop();
    throw new Error(`imgup serve did not come up: ${err}\n${out}`);
  }
  const apiKey = (await readFile(path.join(dataDir, "dev-api-key"), "utf8")).trim();
  return { baseUrl, port, apiKey, child, lines, output: () => out, exit: () => exited, stop };
}
