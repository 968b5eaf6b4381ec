import { execFile } from "node:child_process";
import path from "node:path";
import { imgupCli } from "./test-build.ts";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export { imgupCli };

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `imgup …` (compiled, see imgupCli) as a child process with exactly `env` (plus PATH): nothing of the
 * test runner's DATABASE_URL, REDIS_URL or S3 settings leaks in unless passed.
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...nodeArgs, imgupCli(), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 240_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
