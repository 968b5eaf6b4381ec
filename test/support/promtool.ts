import { spawn, spawnSync } from "node:child_process";
import { it } from "vitest";

/**
 * Debian's `promtool` (package prometheus), or null when it is not installed: then a skipped test
 * says so, and in CI (CI=true) it is an error, as for every backend (see backends.ts).
 */
export function promtoolPath(): string | null {
  const found = spawnSync("promtool", ["--version"], { stdio: "ignore" });
  if (found.status === 0) return "promtool";
  const reason = "promtool (not installed: apt-get install prometheus)";
  if (process.env.CI === "true") throw new Error(`${reason}: CI installs it`);
  it.skip(reason, () => {});
  return null;
}

/** Runs promtool with `input` on stdin; resolves with its exit code and output, never rejects on a lint. */
export function promtool(
  args: string[],
  input?: string,
  cwd?: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("promtool", args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input ?? "");
  });
}

/** `promtool check metrics` on a scrape: exit 0 and no lint line. */
export async function checkMetrics(exposition: string): Promise<{ code: number; output: string }> {
  return promtool(["check", "metrics"], exposition);
}
