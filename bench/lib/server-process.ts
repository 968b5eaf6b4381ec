/**
 * Servers under test run in processes of their own, so the load generator (this process) never
 * shares an event loop or a CPU time slice accounting with them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { onInterrupt } from "./cleanup.ts";
import { processTreeCpuMs } from "./cpu.ts";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export interface ServerProcess {
  name: string;
  baseUrl: string;
  pid: number;
  /** CPU ms the process and its children have used so far. */
  cpuMs(): number | null;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  baseUrl: string;
  /** Path answering 2xx once the server is ready. */
  readyPath: string;
  timeoutMs?: number;
}

/** Starts the server and resolves once readyPath answers; its output is kept for the error message. */
export async function spawnServer(opts: SpawnOptions): Promise<ServerProcess> {
  const child = spawn(opts.command, opts.args, { env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const forget = onInterrupt(() => stopChild(child, exited));
  const stop = async () => {
    await stopChild(child, exited);
    forget();
  };
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (gone) {
      forget();
      throw new Error(`${opts.name} exited before it was ready:\n${output}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.name} was not ready within ${opts.timeoutMs ?? 60_000} ms:\n${output}`);
    }
    const ok = await fetch(`${opts.baseUrl}${opts.readyPath}`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid as number;
  return {
    name: opts.name,
    baseUrl: opts.baseUrl,
    pid,
    cpuMs: () => processTreeCpuMs(pid),
    stop,
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const killed = await Promise.race([
    exited.then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), 15_000)),
  ]);
  if (!killed) {
    child.kill("SIGKILL");
    await exited;
  }
}
