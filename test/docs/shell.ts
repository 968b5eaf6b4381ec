import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { eventually, freePort } from "../support/harness.ts";
import { REPO } from "./markdown.ts";

/**
 * What a newcomer's shell has: no DATABASE_URL, REDIS_URL, S3 or IMGUP_* from the CI environment,
 * which would turn the docs' embedded commands into something else.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "LANG", "TERM", "TMPDIR"]) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...extra };
}

/**
 * `bash scripts/local-s3.sh start` on a running server is a no-op, but one whose health check
 * times out on a loaded machine would be torn down and restarted, and that server is shared: the
 * doc blocks run with `start` answered by `status` (which fails when nothing runs).
 */
export const NEVER_RESTART_RGW = `bash() {
  if [ "\${1:-}" = scripts/local-s3.sh ] && [ "\${2:-}" = start ]; then command bash scripts/local-s3.sh status;
  else command bash "$@"; fi
}
`;

export interface ShellResult {
  code: number | null;
  output: string;
}

/**
 * Runs a script with bash -euo pipefail, as one would paste it, but failing at the first error.
 * Killed (and reported, with its output) after timeoutMs: the docs' wait loops have no bound.
 */
export function runShell(
  script: string,
  opts: { cwd: string; env: Record<string, string>; timeoutMs?: number; prefix?: string[] },
): Promise<ShellResult> {
  const [command = "bash", ...args] = [...(opts.prefix ?? []), "bash", "-euo", "pipefail", "-c", script];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    const timer = setTimeout(() => {
      killGroup(child);
      output += `\n[killed after ${opts.timeoutMs} ms]`;
    }, opts.timeoutMs ?? 240_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      // What the script left running in the background (a server it started) goes with it.
      killGroup(child, true);
      resolve({ code, output });
    });
  });
}

function killGroup(child: ChildProcess, evenAfterExit = false): void {
  if (child.pid === undefined || (child.exitCode !== null && !evenAfterExit)) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

const scratch: string[] = [];

/** Removes the scratch directories made so far. */
export function removeScratchDirs(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A scratch directory holding what the walkthroughs read: README.md and docs/sample.jpg. */
export function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgup-docs-"));
  scratch.push(dir);
  mkdirSync(path.join(dir, "docs"));
  copyFileSync(path.join(REPO, "README.md"), path.join(dir, "README.md"));
  copyFileSync(path.join(REPO, "docs/sample.jpg"), path.join(dir, "docs/sample.jpg"));
  return dir;
}

export interface Served {
  baseUrl: string;
  /** The development key the server created and saved into its data directory. */
  key: string;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Runs `script` (which ends by starting imgup: `npm start`, or a doc block that does) in the
 * repository with a fresh data directory and a port of its own, and waits until it serves.
 * `npm start` inside the script runs `imgup serve` directly (no `npm run build` of the demo page,
 * which is off), so the doc block can stay as written.
 */
export async function serveFromScript(script: string, env: Record<string, string>): Promise<Served> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), "imgup-docs-data-"));
  const baseUrl = `http://127.0.0.1:${port}`;
  const shim = `npm() { if [ "$1" = start ]; then exec node --import tsx src/cli.ts serve; fi; echo "npm $* is not expected here" >&2; return 1; }\n`;
  const child = spawn("bash", ["-euo", "pipefail", "-c", shim + script], {
    cwd: REPO,
    env: cleanEnv({
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: baseUrl,
      IMGUP_DATA_DIR: dataDir,
      IMGUP_DEMO_PAGE: "false",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      LOG_LEVEL: "warn",
      ...env,
    }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  const collect = (d: Buffer) => {
    out = (out + d).slice(-50_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      killGroup(child);
      await gone;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const keyFile = path.join(dataDir, "dev-api-key");
  try {
    const state = await eventually(async () => {
      if (child.exitCode !== null) return "exited";
      if (!existsSync(keyFile)) return false;
      return (await fetch(`${baseUrl}/healthz`)).ok && "serving";
    }, 180_000);
    if (state === "exited") throw new Error(`exited with ${child.exitCode}`);
  } catch (err) {
    await stop();
    throw new Error(`imgup did not start: ${String(err)}\n${out}`);
  }
  return { baseUrl, key: readFileSync(keyFile, "utf8").trim(), output: () => out, stop };
}
