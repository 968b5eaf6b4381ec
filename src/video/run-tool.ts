import { spawn } from "node:child_process";

/**
 * Runs ffprobe/ffmpeg as a child with a hard deadline, an AbortSignal and bounded output: the
 * child is SIGKILLed (no grace: it only writes into a temp dir its caller removes) and this
 * resolves once it has exited, so nothing keeps writing after the caller cleans up.
 */
export interface ToolRun {
  bin: string;
  args: string[];
  timeoutMs: number;
  signal?: AbortSignal;
  /** stdout is collected up to this; more kills the child (outcome "output_too_large"). */
  maxStdoutBytes?: number;
  /** stdout handed over line by line instead of collected (ffmpeg's -progress pipe:1). */
  onStdoutLine?: (line: string) => void;
  /** How much of stderr's end to keep for error details. */
  stderrTailBytes?: number;
}

export type ToolResult =
  | { outcome: "exited"; code: number; stdout: string; stderr: string }
  | { outcome: "timeout" | "aborted" | "output_too_large"; stderr: string }
  | { outcome: "not_installed"; stderr: string };

export async function runTool(run: ToolRun): Promise<ToolResult> {
  if (run.signal?.aborted) return { outcome: "aborted", stderr: "" };
  const maxOut = run.maxStdoutBytes ?? 4 * 1024 * 1024;
  const tailMax = run.stderrTailBytes ?? 4096;
  const child = spawn(run.bin, run.args, {
    stdio: ["ignore", "pipe", "pipe"],
    // Not the server's environment: bytes an attacker chose go through this process.
    env: toolEnv(),
  });
  let killedFor: "timeout" | "aborted" | "output_too_large" | null = null;
  const kill = (why: "timeout" | "aborted" | "output_too_large") => {
    if (killedFor) return;
    killedFor = why;
    child.kill("SIGKILL");
  };
  const timer = setTimeout(() => kill("timeout"), run.timeoutMs);
  const onAbort = () => kill("aborted");
  run.signal?.addEventListener("abort", onAbort, { once: true });

  const out: Buffer[] = [];
  let outBytes = 0;
  let partial = "";
  child.stdout.on("data", (chunk: Buffer) => {
    if (run.onStdoutLine) {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      // A line longer than the bound is not progress output: stop the child.
      if (partial.length > maxOut) return kill("output_too_large");
      for (const line of lines) run.onStdoutLine(line.trimEnd());
      return;
    }
    outBytes += chunk.length;
    if (outBytes > maxOut) return kill("output_too_large");
    out.push(chunk);
  });
  let tail = "";
  child.stderr.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString("utf8")).slice(-tailMax);
  });

  return new Promise<ToolResult>((resolve) => {
    let spawnError: NodeJS.ErrnoException | null = null;
    child.on("error", (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    // "close": the process exited and its pipes are drained (no late progress line).
    child.on("close", (code) => {
      clearTimeout(timer);
      run.signal?.removeEventListener("abort", onAbort);
      if (spawnError?.code === "ENOENT") return resolve({ outcome: "not_installed", stderr: "" });
      if (killedFor) return resolve({ outcome: killedFor, stderr: tail });
      if (spawnError) return resolve({ outcome: "exited", code: -1, stdout: "", stderr: spawnError.message });
      if (run.onStdoutLine && partial) run.onStdoutLine(partial.trimEnd());
      resolve({
        outcome: "exited",
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: tail,
      });
    });
  });
}

function toolEnv(): NodeJS.ProcessEnv {
  const keep = /^(PATH|HOME|TMPDIR|TMP|TEMP|LANG|LC_[A-Z]+|TZ)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => keep.test(k)));
}

/** The last lines of stderr, for a rejection's detail (ffmpeg's last line names the failure). */
export function lastLines(stderr: string, n = 2): string {
  return stderr.trim().split("\n").slice(-n).join(" / ").slice(0, 300);
}
